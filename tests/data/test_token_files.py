"""Token-classification files: CoNLL columns and JSONL, checked line by line."""

import json
import os
from pathlib import Path

import pytest

from keras_mapping.data.tag_schemes import TagError
from keras_mapping.data.token_files import (TaggedSentences, TokenFileError, find_token_splits,
                                            looks_like_token_file, read_conll, read_token_file,
                                            read_token_jsonl)

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC
"""


def jsonl(*records):
    return "".join(json.dumps(record) + "\n" for record in records)


def test_conll_sentences_skip_document_starts_and_keep_first_lines(write):
    data = read_conll(write("train.txt", CONLL))
    assert data.words == [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"],
                          ["BRUSSELS"]]
    assert data.tags == [["B-ORG", "O", "B-MISC", "O"], ["B-PER", "I-PER"], ["B-LOC"]]
    assert data.lines == [3, 8, 13]
    assert data.tag_names == ["O", "B-LOC", "B-MISC", "B-ORG", "B-PER", "I-PER"]
    assert data.tag_ids() == [[3, 0, 2, 0], [4, 5], [1]]
    assert len(data) == 3 and data.head(1).words == [data.words[0]]
    assert data.source.endswith("train.txt")


def test_tag_column_chooses_the_chunk_tags(write):
    data = read_conll(write("train.txt", CONLL), tag_column=2)
    assert data.tags[0] == ["B-NP", "B-VP", "B-NP", "I-NP"]
    assert read_conll(write("train.txt", CONLL), tag_column=-2).tags == data.tags


def test_tabs_windows_line_ends_and_no_final_blank_line(write):
    data = read_conll(write("dev.conll", "Ada\tB-PER\r\nwrote\tO\r\n\r\n\r\nHi\tO"))
    assert data.words == [["Ada", "wrote"], ["Hi"]]
    assert data.lines == [1, 5]


def test_a_docstart_line_ends_the_sentence_before_it(write):
    data = read_conll(write("a.txt", "a O\n-DOCSTART- O\nb O\n"))
    assert data.words == [["a"], ["b"]]


def test_wrong_column_count_names_file_and_line(write):
    path = write("train.txt", "EU NNP B-NP B-ORG\nrejects B-VP O\n")
    with pytest.raises(TokenFileError, match=r"train\.txt:2: expected 4 whitespace-separated "
                                             r"columns \(as on line 1\), got 3"):
        read_conll(path)


@pytest.mark.parametrize("tag_column, message", [
    (4, r"tag_column=4 is out of range for the 4 columns"),
    (-5, r"tag_column=-5 is out of range"),
    (0, r"tag_column=0 is the word column"),
])
def test_tag_column_out_of_range(write, tag_column, message):
    with pytest.raises(TokenFileError, match=r"train\.txt:3: " + message):
        read_conll(write("train.txt", CONLL), tag_column=tag_column)


def test_a_single_column_file_is_an_error(write):
    with pytest.raises(TokenFileError, match=r"w\.txt:1: found 1 column"):
        read_conll(write("w.txt", "just\nwords\n"))


@pytest.mark.parametrize("content", ["", "\n\n", "-DOCSTART- -X- -X- O\n\n"])
def test_a_file_without_sentences_is_an_error(write, content):
    with pytest.raises(TokenFileError, match=r"empty\.txt: contains no sentences"):
        read_conll(write("empty.txt", content))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.txt' does not exist"):
        read_conll(tmp_path / "nothing.txt")


def test_tags_are_normalised_and_errors_name_the_token_line(write):
    path = write("iob1.txt", "a I-PER\nb I-PER\nc B-PER\n\nd O\ne I-LOC\n")
    assert read_conll(path, scheme="IOB1").tags == [["B-PER", "I-PER", "B-PER"], ["O", "B-LOC"]]
    assert read_conll(path).tags[1] == ["O", "B-LOC"]  # repaired, as conlleval reads it
    with pytest.raises(TagError, match=r"iob1\.txt:1: tag 'I-PER' after the sentence start"):
        read_conll(path, repair=False)
    with pytest.raises(TagError, match=r"bad\.txt:2: malformed tag 'PER'"):
        read_conll(write("bad.txt", "a O\nb PER\n"))


def test_undecodable_bytes_name_the_line(write):
    with pytest.raises(TokenFileError, match=r"latin\.txt:2: invalid UTF-8"):
        read_conll(write("latin.txt", b"a O\ncaf\xe9 O\n"))


def test_tag_ids_with_another_tag_set_names_the_unknown_tag(write):
    data = read_conll(write("dev.txt", "a O\n\nb O\nc B-LOC\n"))
    assert data.tag_ids(["O", "B-LOC", "B-PER"]) == [[0], [0, 1]]
    with pytest.raises(TokenFileError, match=r"dev\.txt:3: tag 'B-LOC' of word 2 \('c'\) is not "
                                             r"in the tag set \['O', 'B-PER'\]"):
        data.tag_ids(["O", "B-PER"])


def test_tagged_sentences_check_their_lengths():
    with pytest.raises(ValueError, match="s:4: sentence 0 has 2 words but 1 tags"):
        TaggedSentences([["a", "b"]], [["O"]], ["O"], "s", [4])


def test_jsonl_tokens_or_words_and_empty_sentences_skipped(write):
    path = write("train.jsonl", jsonl({"tokens": ["in", "Paris"], "tags": ["O", "B-LOC"]},
                                      {"tokens": [], "tags": []},
                                      {"words": ["Ada"], "tags": ["B-PER"], "id": 7}) + "\n")
    data = read_token_jsonl(path)
    assert data.words == [["in", "Paris"], ["Ada"]]
    assert data.tags == [["O", "B-LOC"], ["B-PER"]]
    assert data.lines == [1, 3]
    assert read_token_jsonl(write("s.jsonl", jsonl({"tokens": ["x"], "tags": ["S-PER"]})),
                            scheme="bioes").tags == [["B-PER"]]


@pytest.mark.parametrize("line, message", [
    ('{"tokens": ["a"], "tags": ["O"]', "invalid JSON"),
    ('["a"]', "expected a JSON object, found list"),
    ('{"tokens": ["a"]}', r"expected the keys 'tokens' \(or 'words'\) and 'tags', found "
                          r"\['tokens'\]"),
    ('{"tokens": ["a"], "words": ["a"], "tags": ["O"]}', "expected the keys"),
    ('{"tokens": ["a", "b"], "tags": ["O"]}', "2 tokens but 1 tags"),
    ('{"tokens": "a b", "tags": ["O"]}', "'tokens' must be a list, found str"),
    ('{"tokens": ["a", 3], "tags": ["O", "O"]}', r"tokens\[1\] must be a string, found int 3"),
    ('{"tokens": ["a"], "tags": [null]}', r"tags\[0\] must be a string, found NoneType"),
    ('{"tokens": ["a", " "], "tags": ["O", "O"]}', r"tokens\[1\] is ' '"),
    ('{"tokens": ["a"], "tags": ["PER"]}', r"malformed tag 'PER'"),
])
def test_jsonl_errors_name_file_and_line(write, line, message):
    path = write("bad.jsonl", jsonl({"tokens": ["ok"], "tags": ["O"]}) + line + "\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:2(, token 1)?: " + message):
        read_token_jsonl(path)


def test_jsonl_without_sentences(write):
    with pytest.raises(TokenFileError, match="contains no sentences"):
        read_token_jsonl(write("e.jsonl", jsonl({"tokens": [], "tags": []})))


def test_read_token_file_dispatches_on_the_suffix(write):
    assert read_token_file(write("a.conll", "x O\n")).words == [["x"]]
    assert read_token_file(write("a.TXT", "x O\n")).words == [["x"]]
    assert read_token_file(write("a.jsonl", jsonl({"tokens": ["y"], "tags": ["O"]})),
                           scheme="iob2").words == [["y"]]
    with pytest.raises(TokenFileError, match=r"a\.tsv: unsupported token file type '\.tsv'; "
                                             r"supported: \.txt, \.conll, \.jsonl"):
        read_token_file(write("a.tsv", "x\tO\n"))


def test_find_token_splits(tmp_path):
    for name in ("train.conll", "dev.jsonl", "test.txt", "train.tsv", "README.md"):
        (tmp_path / name).write_text("")
    assert find_token_splits(tmp_path) == {"train": tmp_path / "train.conll",
                                           "validation": tmp_path / "dev.jsonl",
                                           "test": tmp_path / "test.txt"}
    (tmp_path / "validation.txt").write_text("")
    with pytest.raises(TokenFileError, match="2 files for the validation split: "
                                             "validation.txt, dev.jsonl"):
        find_token_splits(tmp_path)
    with pytest.raises(FileNotFoundError):
        find_token_splits(tmp_path / "absent")


def test_looks_like_token_file(write, tmp_path):
    assert looks_like_token_file(write("a.txt", CONLL))
    assert looks_like_token_file(write("b.txt", "\nAda NNP B-PER\nwrote VBD O\n"))
    assert looks_like_token_file(write("c.jsonl", jsonl({"words": ["a"], "tags": ["O"]})))
    glue = "index\tsentence1\tsentence2\tlabel\n0\tA man.\tA person.\tentailment\n"
    assert not looks_like_token_file(write("train.tsv", glue))
    assert not looks_like_token_file(write("sst2.tsv", "sentence\tlabel\nit 's fine\t1\n"))
    assert not looks_like_token_file(write("d.jsonl", jsonl({"text": "a", "label": 1})))
    assert not looks_like_token_file(write("corpus.txt", "One sentence .\n"))
    assert looks_like_token_file(write("bom.txt", "\ufeffAda B-PER\r\nwrote O\r\n"))
    assert not looks_like_token_file(write("empty.txt", ""))
    assert not looks_like_token_file(write("bom_only.txt", "\ufeff\n"))
    assert not looks_like_token_file(write("weights.txt", b"Ada B-PER\n\x00\x01"))
    assert not looks_like_token_file(tmp_path / "absent.txt")


def test_conll2003_validation_file():
    data_dir = Path(os.environ.get("KERAS_MAPPING_DATA_DIR", "/work/shared/data"))
    path = data_dir / "conll2003" / "validation.txt"
    if not path.is_file():
        pytest.skip(f"{path} is absent on this machine")
    data = read_conll(path, repair=False)  # the published file is valid IOB2
    assert len(data) == 3250
    assert sum(len(words) for words in data.words) == 51362
    types = ("PER", "LOC", "ORG", "MISC")
    assert set(data.tag_names) == {"O"} | {f"{p}-{t}" for p in "BI" for t in types}
    assert data.tag_names[0] == "O"
    assert looks_like_token_file(path)
