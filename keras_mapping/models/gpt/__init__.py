"""A GPT-style causal language model on the same layers as BERT."""

from keras_mapping.models.gpt.backbone import GPTBackbone
from keras_mapping.models.gpt.causal_lm import GPTCausalLM, TiedEmbeddingLogits

__all__ = ["GPTBackbone", "GPTCausalLM", "TiedEmbeddingLogits"]
