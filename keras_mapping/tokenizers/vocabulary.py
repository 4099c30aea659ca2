"""Training a WordPiece vocabulary that fits `BertTokenizer`.

keras-hub's trainer would normalise and split the text its own way; the words are made with
`split_words` instead, so the vocabulary is learnt on exactly the words the tokenizer sees.
"""

import os
from pathlib import Path

import keras_hub
import tensorflow as tf

from keras_mapping.tokenizers.wordpiece import SPECIAL_TOKENS, split_words
from keras_mapping.tracing import as_written


def _text_dataset(texts_or_files):
    if isinstance(texts_or_files, tf.data.Dataset):
        return texts_or_files
    if isinstance(texts_or_files, (str, os.PathLike)):
        texts_or_files = [texts_or_files]
    items = list(texts_or_files)
    if not items:
        raise ValueError("`texts_or_files` is empty: there is no corpus to learn from.")
    files = [Path(item) for item in items if isinstance(item, os.PathLike)]
    texts = [item for item in items if not isinstance(item, os.PathLike)]
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"Corpus file '{path}' does not exist.")
    parts = []
    if texts:
        parts.append(tf.data.Dataset.from_tensor_slices(tf.constant(texts, tf.string)))
    if files:
        parts.append(tf.data.TextLineDataset([str(path) for path in files]))
    dataset = parts[0]
    for part in parts[1:]:
        dataset = dataset.concatenate(part)
    return dataset.batch(1024)


def _write_atomically(tokens, output_path):
    path = Path(output_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A reader never sees half a vocabulary: the file appears complete or not at all.
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "w", encoding="utf-8", newline="\n") as file:
            file.writelines(f"{token}\n" for token in tokens)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def train_wordpiece_vocabulary(texts_or_files, vocabulary_size, output_path=None,
                               lowercase=True, strip_accents=None, split_on_cjk=True,
                               reserved_tokens=()):
    """Learns a WordPiece vocabulary on text normalised exactly as `BertTokenizer` does.

    Args:
        texts_or_files: strings (each a text), `pathlib.Path`s (plain-text files read line by
            line), a mix of both, or a `tf.data.Dataset` of strings.
        vocabulary_size: the most tokens the vocabulary may hold, special tokens included.
        output_path: where to write `vocab.txt` (one token per line), if anywhere.
        lowercase: as in `BertTokenizer`.
        strip_accents: as in `BertTokenizer`; `None` follows `lowercase`.
        split_on_cjk: as in `BertTokenizer`.
        reserved_tokens: extra tokens placed right after the special ones.

    Returns:
        The tokens: `[PAD]` (id 0), `[UNK]`, `[CLS]`, `[SEP]`, `[MASK]`, the reserved tokens,
        then the learnt word pieces.

    Raises:
        ValueError: the corpus is empty or holds no words, or `vocabulary_size` leaves no
            room beyond the special and reserved tokens.
        FileNotFoundError: a corpus file does not exist.

    Example:
    >>> from keras_mapping.tokenizers import BertTokenizer
    >>> tokens = train_wordpiece_vocabulary(["The cat sat on the mat.", "The bat sat!"] * 50, 40)
    >>> tokens[:5]
    ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
    >>> [tokens[i] for i in BertTokenizer(tokens).tokenize("A cat sat!").numpy()]
    ['a', 'cat', 'sat', '!']
    """
    reserved = list(SPECIAL_TOKENS) + [t for t in reserved_tokens if t not in SPECIAL_TOKENS]
    if vocabulary_size <= len(reserved):
        raise ValueError(
            f"vocabulary_size={vocabulary_size} leaves no room for word pieces after the "
            f"{len(reserved)} special and reserved tokens."
        )
    words = _text_dataset(texts_or_files).map(
        as_written(lambda text: split_words(text, lowercase, strip_accents, split_on_cjk)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    # Stops at the first batch with a word, so this costs next to nothing on a real corpus.
    has_words = as_written(lambda w: tf.size(w.flat_values) > 0)
    if not any(True for _ in words.filter(has_words).take(1)):
        raise ValueError("The corpus holds no words (only whitespace or control characters).")
    tokens = keras_hub.tokenizers.compute_word_piece_vocabulary(
        words, vocabulary_size, split=False, reserved_tokens=reserved
    )
    if output_path is not None:
        _write_atomically(tokens, output_path)
    return tokens
