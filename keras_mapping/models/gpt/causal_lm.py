"""Next-token prediction on a `GPTBackbone`, with greedy and top-k generation."""

import keras
import numpy as np
from keras import ops

from keras_mapping.models.task import Task

GENERATION_STRATEGIES = ("greedy", "top_k")


@keras.saving.register_keras_serializable(package="keras_mapping")
class TiedEmbeddingLogits(keras.layers.Layer):
    """Logits over the vocabulary from hidden states, through the transposed word embeddings
    (the input and output embeddings are one matrix, as in GPT-2).

    Args:
        token_embedding: the `keras.layers.Embedding` whose table is reused.
        **kwargs: base `keras.layers.Layer` arguments.
    """

    def __init__(self, token_embedding, **kwargs):
        super().__init__(**kwargs)
        self.token_embedding = token_embedding

    def call(self, hidden):
        kernel = ops.cast(ops.transpose(self.token_embedding.embeddings), hidden.dtype)
        return ops.cast(ops.matmul(hidden, kernel), "float32")


@keras.saving.register_keras_serializable(package="keras_mapping")
class GPTCausalLM(Task):
    """Logits for the next token at every position: `(batch, length, vocabulary_size)`.

    Train with `x = ids[:, :-1]`, `y = ids[:, 1:]` and the shifted padding mask as sample
    weight (see `keras_mapping.data.causal_lm_dataset`); `compile()` defaults to that loss.

    Args:
        backbone: a `GPTBackbone`.
        **kwargs: base `keras.Model` arguments.

    Example:
    >>> from keras_mapping.models.gpt import GPTBackbone
    >>> lm = GPTCausalLM(GPTBackbone(vocabulary_size=30, num_layers=1, num_heads=2,
    ...                              hidden_dim=8, intermediate_dim=16,
    ...                              max_sequence_length=16))
    >>> tokens = lm.generate([1, 5, 7], max_new_tokens=4)
    >>> len(tokens), tokens[:3]
    (7, [1, 5, 7])
    """

    def __init__(self, backbone, **kwargs):
        self.backbone = backbone
        self.logits_layer = TiedEmbeddingLogits(backbone.token_embedding, name="logits")
        inputs = backbone.input
        super().__init__(inputs=inputs, outputs=self.logits_layer(backbone(inputs)), **kwargs)

    # AdamW at 5e-4, cross-entropy over real target tokens, next-token accuracy.
    task_kind = "causal-lm"

    def next_token_logits(self, token_ids):
        """Logits of the token after `token_ids` (a list of ints), from the last
        `max_sequence_length` of them."""
        window = np.asarray(token_ids[-self.backbone.max_sequence_length:], "int32")[None]
        logits = self({"token_ids": window, "padding_mask": np.ones_like(window, bool)},
                      training=False)
        return np.asarray(ops.convert_to_numpy(logits[0, -1]), "float64")

    def generate(self, token_ids, max_new_tokens=20, strategy="greedy", top_k=10,
                 temperature=1.0, seed=None, end_token_id=None):
        """Extends a prompt token by token.

        Args:
            token_ids: the prompt, a list of ints.
            max_new_tokens: most tokens to add.
            strategy: "greedy" (the most likely token) or "top_k" (sample among the `top_k`
                most likely, with `temperature`).
            top_k: candidates for "top_k".
            temperature: divides the logits before sampling.
            seed: seed of the sampling.
            end_token_id: stop after emitting this token.

        Returns:
            The prompt followed by the generated tokens, a list of ints.
        """
        if strategy not in GENERATION_STRATEGIES:
            raise ValueError(f"`strategy` must be one of {GENERATION_STRATEGIES}, got "
                             f"{strategy!r}.")
        if strategy == "top_k" and not 1 <= top_k <= self.backbone.vocabulary_size:
            raise ValueError(f"`top_k` must be between 1 and the vocabulary size, got {top_k}.")
        if temperature <= 0:
            raise ValueError(f"`temperature` must be positive, got {temperature}.")
        if not len(token_ids):
            raise ValueError("The prompt must hold at least one token.")
        rng = np.random.default_rng(seed)
        tokens = [int(t) for t in token_ids]
        for _ in range(max_new_tokens):
            logits = self.next_token_logits(tokens)
            if strategy == "greedy":
                chosen = int(logits.argmax())
            else:
                candidates = np.argpartition(logits, -top_k)[-top_k:]
                scaled = logits[candidates] / temperature
                probabilities = np.exp(scaled - scaled.max())
                chosen = int(rng.choice(candidates, p=probabilities / probabilities.sum()))
            tokens.append(chosen)
            if chosen == end_token_id:
                break
        return tokens
