"""The tf.data side of corpora (keras_mapping/data/corpus_stream.py): text, gzip and shards
stream the same records; held-out documents by key; determinism; a split by worker; bounds;
errors met mid-stream; and memory that does not grow with the corpus."""

import gzip
import json
import subprocess
import sys
import textwrap
from collections import Counter

import pytest
import tensorflow as tf

from keras_mapping.data import corpus_stream
from keras_mapping.data.corpus import CorpusError, is_held_out, open_corpus, sentence_records
from keras_mapping.data.corpus_shards import shard_corpus
from keras_mapping.data.corpus_stream import (check_training_data, corpus_records,
                                              held_out_examples, naming_corpus_errors,
                                              training_examples, vocabulary_sample)
from tests.conftest import REPO_ROOT
from tests.helpers import corpus_documents, write_corpus


def records(corpus):
    """Every record of a corpus as `(sentence, document key, position)`, in stream order."""
    return [(sentence.decode(), int(key), int(position))
            for chunk in corpus_records(corpus)
            for sentence, key, position in zip(*(chunk[name].numpy() for name in
                                                 ("sentence", "document", "position")))]


def sentences(examples):
    return [texts[0].numpy().decode() for texts, _ in examples]


@pytest.fixture(scope="module")
def three_files(tmp_path_factory):
    """Three text files of 30 documents each, every sentence unique."""
    folder = tmp_path_factory.mktemp("corpus")
    documents = corpus_documents(90, sentences=4, seed=3)
    for part in range(3):
        named = [[f"f{part} {sentence}" for sentence in document]
                 for document in documents[part::3]]
        write_corpus(folder / f"part{part}.txt", named)
    return sorted(folder.glob("*.txt"))


def test_text_gzip_and_shards_stream_the_same_records(tmp_path, three_files):
    text = open_corpus(three_files)
    expected = Counter(records(text))
    assert sum(expected.values()) == 360
    (tmp_path / "gz").mkdir()
    for path in three_files:
        (tmp_path / "gz" / f"{path.name}.gz").write_bytes(gzip.compress(path.read_bytes()))
    assert Counter(records(open_corpus([tmp_path / "gz"]))) == expected
    shard_corpus(three_files, tmp_path / "one", shards=1)
    one_shard = open_corpus([tmp_path / "one"])
    assert one_shard.shards
    # One shard keeps the documents in the order of the files.
    assert records(one_shard) == [record for path in three_files
                                  for record in sentence_records(path)]
    shard_corpus(three_files, tmp_path / "four", shards=4)
    assert Counter(records(open_corpus([tmp_path / "four"]))) == expected


def test_held_out_documents_do_not_depend_on_file_order(three_files):
    share = 0.2
    forward = set(sentences(held_out_examples(open_corpus(three_files),
                                              validation_share=share)))
    backward = set(sentences(held_out_examples(open_corpus(three_files[::-1]),
                                               validation_share=share)))
    assert forward == backward
    every = records(open_corpus(three_files))
    assert forward == {sentence for sentence, key, _ in every if is_held_out(key, share)}
    assert 0.1 < len(forward) / len(every) < 0.3
    training = sentences(training_examples(open_corpus(three_files[::-1]),
                                           validation_share=share))
    assert sorted(training) == sorted(s for s, _, _ in every if s not in forward)


def test_training_examples_are_deterministic_with_the_seed(three_files):
    corpus = open_corpus(three_files)

    def order(seed):
        return sentences(training_examples(corpus, validation_share=0.1, seed=seed))

    first = order(5)
    assert first == order(5)
    assert first != order(6) and sorted(first) == sorted(order(6))
    # Each pass of a repeated stream is shuffled anew, reproducibly.
    passes = training_examples(corpus, validation_share=0.1, seed=5).repeat(2)
    both = sentences(passes)
    assert both[:len(first)] == first and both[len(first):] != first
    assert both == sentences(training_examples(corpus, validation_share=0.1,
                                               seed=5).repeat(2))


def test_files_are_split_between_workers(three_files):
    corpus = open_corpus(three_files)
    parts = [sentences(training_examples(corpus, num_workers=2, worker_index=index))
             for index in range(2)]
    assert {s.split()[0] for s in parts[0]} == {"f0", "f2"}
    assert {s.split()[0] for s in parts[1]} == {"f1"}
    assert sorted(parts[0] + parts[1]) == sorted(sentences(training_examples(corpus)))
    options = training_examples(corpus, num_workers=2, worker_index=0).options()
    assert (options.experimental_distribute.auto_shard_policy
            == tf.data.experimental.AutoShardPolicy.OFF)
    with pytest.raises(CorpusError, match="4 workers need at least as many corpus files; "
                                          "the corpus has 3.*--shards 4"):
        training_examples(corpus, num_workers=4, worker_index=0)


def test_vocabulary_sample_and_held_out_set_are_bounded(three_files, monkeypatch):
    corpus = open_corpus(three_files)
    monkeypatch.setattr(corpus_stream, "VOCABULARY_SAMPLE_SENTENCES", 30)
    sample = [s.decode() for batch in vocabulary_sample(corpus, validation_share=0.2)
              for s in batch.numpy()]
    assert Counter(s.split()[0] for s in sample) == {"f0": 10, "f1": 10, "f2": 10}
    held = {s for s, key, _ in records(corpus) if is_held_out(key, 0.2)}
    assert not held & set(sample)
    monkeypatch.setattr(corpus_stream, "HELD_OUT_EXAMPLES", 7)
    assert len(sentences(held_out_examples(corpus, validation_share=0.2))) == 7


def test_a_bad_byte_met_mid_stream_is_named_by_file_and_line(write):
    late = write("late.txt", b"fine sentence .\n" * 3000 + b"\ncaf\xe9\n")
    corpus = open_corpus([late])  # the start of the file is fine
    # TensorFlow carries the reader's exception as its own error...
    with pytest.raises(tf.errors.OpError):
        sentences(training_examples(corpus))
    # ...which the context names again, by file and line.
    with pytest.raises(CorpusError, match=r"late.txt:3002: invalid UTF-8"):
        with naming_corpus_errors(corpus):
            sentences(training_examples(corpus))


@pytest.mark.parametrize("text, options, message", [
    ("\n \n\n", {}, "holds no text"),
    ("one .\ntwo .\n", {"batch_size": 3}, "gives 2 training examples .sentences., fewer "
                                          "than one batch of 3"),
    ("one .\ntwo .\n", {"next_sentence": True}, "needs at least 2 documents.*holds 1"),
    ("one .\n\ntwo .\n", {"next_sentence": True}, "documents of at least 2 sentences"),
])
def test_corpora_that_cannot_train_are_refused(write, text, options, message):
    corpus = open_corpus([write("small.txt", text)])
    with pytest.raises(CorpusError, match=message):
        check_training_data(corpus, **options)


def test_the_check_reads_only_as_far_as_it_must(write):
    # A bad byte far into the file is not reached: one batch was found long before.
    path = write("big.txt", b"fine sentence .\n" * 5000 + b"caf\xe9\n")
    check_training_data(open_corpus([path]), batch_size=64)


PEAK_RSS = textwrap.dedent("""
    import json, resource, sys
    from keras_mapping.data.corpus import open_corpus
    from keras_mapping.data.corpus_stream import (check_training_data, held_out_examples,
                                                  training_examples, vocabulary_sample)
    from keras_mapping.data.pretraining import masked_lm_dataset
    from keras_mapping.tokenizers import BertTokenizer

    corpus = open_corpus([sys.argv[1]])
    check_training_data(corpus, validation_share=0.05, batch_size=64)
    for _ in vocabulary_sample(corpus, validation_share=0.05):
        pass
    held_out = sum(1 for _ in held_out_examples(corpus, validation_share=0.05))
    # A whole pass over the training stream, in large batches to keep Python out of it.
    count = 0
    for _, labels in training_examples(corpus, validation_share=0.05, seed=1).batch(8192):
        count += len(labels)
    batches = masked_lm_dataset(training_examples(corpus, validation_share=0.05), BertTokenizer
                                .from_preset("minilm_l6"), max_length=64, batch_size=64, seed=0)
    for _ in batches.take(50):
        pass
    print(json.dumps({"examples": count, "held_out": held_out,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")


def write_generated_corpus(path, megabytes, seed=0):
    """About `megabytes` of documents of ~200-character sentences: a seeded block,
    repeated with its documents renamed per copy."""
    block = "\n\n".join("\n".join(document) for document in
                        corpus_documents(1000, sentences=5, seed=seed, words=30)).encode()
    with open(path, "wb") as file:
        for copy in range(megabytes * 2**20 // len(block) + 1):
            file.write(block.replace(b"doc", b"c%d doc" % copy) + b"\n\n")
    return path


def test_memory_does_not_grow_with_the_corpus(tmp_path):
    results = []
    for megabytes in (5, 60):
        corpus = write_generated_corpus(tmp_path / f"corpus_{megabytes}.txt", megabytes)
        completed = subprocess.run([sys.executable, "-c", PEAK_RSS, str(corpus)],
                                   capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
        assert completed.returncode == 0, completed.stderr[-3000:]
        results.append(json.loads(completed.stdout.strip().splitlines()[-1]))
        corpus.unlink()
    small, large = results
    assert large["examples"] > 9 * small["examples"]  # the whole stream was read
    # Holding the 60 MB corpus (or its examples) would add over 100 MB (measured at 200 MB:
    # +448 MB with `.cache()`, +350 MB reading the file whole; streamed: +3 MB).
    assert large["peak_rss_mb"] - small["peak_rss_mb"] < 50, results
