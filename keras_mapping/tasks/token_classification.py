"""Token classification (named entities and other tagging): a tag per word, from word-piece
logits; evaluated on entities (exact span and type), predicted as entities with character
offsets into the original text."""

from dataclasses import dataclass

import numpy as np

from keras_mapping.data.pipelines import length_buckets
from keras_mapping.data.tagging import (Windows, continuation_ids, piece_targets,
                                        tagging_dataset, window_sentences)
from keras_mapping.data.token_files import read_token_file
from keras_mapping.models import BertTokenClassifier
from keras_mapping.tasks.entities import entities_of_words, word_spans_of_pieces
from keras_mapping.tasks.entity_metrics import entity_scores
from keras_mapping.tasks.metrics import softmax


@dataclass(frozen=True)
class RawTexts:
    """Texts to tag, as typed (no word split given)."""

    texts: list

    def __len__(self):
        return len(self.texts)


@dataclass(frozen=True)
class TokenReading:
    """How token files are read (the `finetune` flags of these names)."""

    scheme: str = "iob2"
    tag_column: int = -1
    repair: bool = True

    def read(self, path, on_bad_bytes="error"):
        return read_token_file(path, tag_column=self.tag_column, scheme=self.scheme,
                               repair=self.repair, on_bad_bytes=on_bad_bytes)


class TokenClassificationTask:
    """A tag per word from a fixed tag set (IOB2, "O" first), learned from the training
    split and stored with the model.

    Args:
        tag_names: the tag set.
        reading: `TokenReading`.
        label_all_pieces: train every piece of a word, not only its first.
        stride: pieces between the starts of windows over long sentences (None: half).
    """

    name = "token-classification"
    monitor = "f1"
    output_activation = "softmax"
    modality = "text"
    pairs = False
    keeps_validation_batches = True  # windows of token ids, in memory already
    # Sentences of up to ~120 words fit one window (CoNLL-2003's longest is 124 words).
    default_max_length = 128

    def __init__(self, tag_names, reading=TokenReading(), label_all_pieces=False, stride=None):
        self.tag_names = list(tag_names)
        self.reading = reading
        self.label_all_pieces = label_all_pieces
        self.stride = stride
        self._windows = {}

    def describe(self):
        return f"{self.name} of tagged words ({len(self.tag_names)} tags)"

    # -- data -------------------------------------------------------------------------------
    @classmethod
    def from_training_file(cls, path, reading, on_bad_bytes="error", **options):
        """`(task, training sentences)`: the tag set is the training file's, read once."""
        sentences = reading.read(path, on_bad_bytes)
        return cls(sentences.tag_names, reading, **options), sentences

    def examples(self, path, on_bad_bytes="error"):
        return self.checked(self.reading.read(path, on_bad_bytes))

    def checked(self, sentences):
        """`sentences`, once their tags are known to be in the model's set (else a
        file:line error)."""
        sentences.tag_ids(self.tag_names)
        return sentences

    def unlabeled(self, texts, text_pairs=None):
        return RawTexts(list(texts))

    def windows(self, examples, tokenizer, max_length):
        """The `Windows` of `examples` (computed once per examples object and length)."""
        key = (id(examples), max_length)
        if key not in self._windows:
            self._windows[key] = (examples, self._encode(examples, tokenizer, max_length))
        return self._windows[key][1]

    def _encode(self, examples, tokenizer, max_length):
        spans = None
        if isinstance(examples, RawTexts):
            pieces = tokenizer.tokenize_with_offsets(examples.texts)
            word_ids = [np.asarray(ids) for ids in pieces["word_ids"].to_list()]
            starts, targets = [_first_marks(ids) for ids in word_ids], None
            counts = [int(ids.max()) + 1 if ids.size else 0 for ids in word_ids]
            spans = [word_spans_of_pieces(*row) for row in zip(
                word_ids, pieces["start"].to_list(), pieces["end"].to_list())]
        else:
            pieces = tokenizer.tokenize_words(examples.words)
            word_ids = [np.asarray(ids) for ids in pieces["word_ids"].to_list()]
            starts = [_first_marks(ids) for ids in word_ids]
            continuation = continuation_ids(self.tag_names)
            targets = [piece_targets(ids, basic, tags, continuation, self.label_all_pieces)
                       for ids, basic, tags in zip(word_ids, pieces["basic_word_ids"].to_list(),
                                                   examples.tag_ids(self.tag_names))]
            counts = [len(words) for words in examples.words]
        ids = [np.asarray(row) for row in pieces["token_ids"].to_list()]
        out = window_sentences(ids, starts, targets, max_length, self.stride,
                               tokenizer.cls_token_id, tokenizer.sep_token_id)
        return Windows(word_counts=counts, word_spans=spans, **out)

    def dataset(self, examples, tokenizer, max_length, batch_size, shuffle=False, seed=None,
                group_by_length=False, repeat=False, buckets=None, deterministic=None):
        """Batches of windows (options as `keras_mapping.data.text_dataset`'s)."""
        windows = self.windows(examples, tokenizer, max_length)
        return tagging_dataset(windows, batch_size, shuffle=shuffle, seed=seed, repeat=repeat,
                               group_by_length=group_by_length,
                               boundaries=length_buckets(max_length, buckets),
                               deterministic=deterministic)

    def recipe_defaults(self, train_examples, method, pretrained):
        """None of its own: the text recipes of `keras_mapping.training.finetune`."""
        return {}

    def prepared(self, examples, tokenizer, max_length):
        """The examples themselves: windows are cut from the sentences each time."""
        return examples

    def truncated(self, examples, tokenizer, max_length):
        """Always 0: long sentences are windowed, not cut."""
        return 0

    # -- model ------------------------------------------------------------------------------
    def build_model(self, backbone, dropout, pooling=None):
        return BertTokenClassifier(backbone, num_tags=len(self.tag_names), dropout=dropout)

    # -- results ----------------------------------------------------------------------------
    def word_probabilities(self, outputs, examples):
        """Per sentence, a `(words, tags)` array of probabilities (uniform for a word with no
        pieces, which then reads as "O")."""
        windows = self._cached(examples)
        probabilities = [softmax(np.asarray(row, "float64")) for row in _rows(outputs)]
        per_word = windows.word_predictions(probabilities, fill=None)
        uniform = np.full(len(self.tag_names), 1.0 / len(self.tag_names))
        return [np.array([uniform if p is None else p for p in words]).reshape(
            len(words), len(self.tag_names)) for words in per_word]

    def _cached(self, examples):
        found = [value for (key, _), value in self._windows.items() if key == id(examples)]
        if not found:
            raise ValueError("report()/rows() need the examples' windows: build the dataset "
                             "with this task's `dataset()` first.")
        return found[-1][1]

    def predicted_tags(self, outputs, examples):
        return [[self.tag_names[i] for i in words.argmax(-1)] if len(words) else []
                for words in self.word_probabilities(outputs, examples)]

    def report(self, outputs, examples):
        scores = entity_scores(examples.tags, self.predicted_tags(outputs, examples))
        return {**scores, "tag_names": list(self.tag_names),
                "sentences": len(examples), "words": sum(map(len, examples.words))}

    def predicted_rows(self, outputs, examples, tokenizer):
        """Per text, `{"entities": [{"type", "text", "start", "end", "score"}, ...]}` with
        character offsets into the text (`keras_mapping.tasks.entities`)."""
        spans = self._cached(examples).word_spans
        rows = []
        for text, probabilities, text_spans in zip(
                examples.texts, self.word_probabilities(outputs, examples), spans):
            tags = [self.tag_names[i] for i in probabilities.argmax(-1)]
            rows.append({"entities": entities_of_words(text, tags, probabilities.max(-1),
                                                       text_spans)})
        return rows

    @property
    def label_names(self):
        return list(self.tag_names)

    # -- storage ----------------------------------------------------------------------------
    def config(self):
        return {"task": self.name, "tag_names": self.tag_names,
                "scheme": self.reading.scheme, "tag_column": self.reading.tag_column,
                "repair": self.reading.repair, "label_all_pieces": self.label_all_pieces,
                "stride": self.stride}

    @classmethod
    def from_config(cls, config):
        reading = TokenReading(config["scheme"], config["tag_column"], config["repair"])
        return cls(config["tag_names"], reading, config["label_all_pieces"], config["stride"])


def _first_marks(word_ids):
    """The word id at each piece that starts a word, -1 at the others."""
    word_ids = np.asarray(word_ids, "int32")
    if word_ids.size == 0:
        return word_ids
    starts = np.r_[True, word_ids[1:] != word_ids[:-1]]
    return np.where(starts, word_ids, -1).astype("int32")


def _rows(outputs):
    """Per window, its `(positions, tags)` outputs, from an array, a list of arrays, or the
    ragged tensor Keras' `predict` returns for batches of different lengths (read as one
    padded array: `to_list` would build a Python float per logit)."""
    if hasattr(outputs, "row_lengths"):
        padded, lengths = outputs.to_tensor().numpy(), outputs.row_lengths().numpy()
        return [row[:length] for row, length in zip(padded, lengths)]
    return [np.asarray(row) for row in outputs]
