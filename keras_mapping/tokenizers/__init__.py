"""Text to ids: BERT's WordPiece tokenizer, the segment packer and vocabulary training."""

from keras_mapping.tokenizers.packer import BertPacker, BertTextPreprocessor
from keras_mapping.tokenizers.vocabulary import train_wordpiece_vocabulary
from keras_mapping.tokenizers.wordpiece import BertTokenizer

__all__ = ["BertPacker", "BertTextPreprocessor", "BertTokenizer", "train_wordpiece_vocabulary"]
