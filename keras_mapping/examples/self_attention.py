"""The 6-token, 4-dimension self-attention example, worked through our layer.

Blog posts often print Q, K, V and scores for this example that do not follow from the
matrices they give (their Q row 0 is [1.1, 1.6, 1.3, 2.1]; X[0] @ W_Q is
[0.54, 0.37, 0.47, 0.57]). Here the numbers come from `MultiHeadAttention` itself with the
example's matrices loaded as its weights: one head, no biases, identity output projection.
"""

import numpy as np

from keras_mapping.layers import MultiHeadAttention

EMBEDDINGS = np.array(
    [
        [0.1, 0.2, 0.3, 0.4],
        [0.5, 0.6, 0.7, 0.8],
        [0.9, 0.1, 0.2, 0.3],
        [0.4, 0.5, 0.6, 0.7],
        [0.9, 0.1, 0.2, 0.3],
        [0.8, 0.7, 0.6, 0.5],
    ],
    dtype="float32",
)
W_QUERY = np.array(
    [[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8], [0.9, 0.1, 0.2, 0.3], [0.4, 0.5, 0.6, 0.7]],
    dtype="float32",
)
W_KEY = np.array(
    [[0.2, 0.3, 0.4, 0.5], [0.6, 0.7, 0.8, 0.9], [0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]],
    dtype="float32",
)
W_VALUE = np.array(
    [[0.3, 0.4, 0.5, 0.6], [0.7, 0.8, 0.9, 0.1], [0.2, 0.3, 0.4, 0.5], [0.6, 0.7, 0.8, 0.9]],
    dtype="float32",
)


def attention_layer_with_example_weights():
    """A one-head `MultiHeadAttention` holding W_Q, W_K, W_V and an identity output."""
    dim = EMBEDDINGS.shape[-1]
    layer = MultiHeadAttention(num_heads=1, key_dim=dim, use_bias=False)
    x = EMBEDDINGS[None]
    layer(x, x)
    layer.set_weights(
        [W_QUERY[:, None, :], W_KEY[:, None, :], W_VALUE[:, None, :], np.eye(dim)[None]]
    )
    return layer


def worked_example():
    """Q, K, V, scaled scores, attention weights and output of the example, as NumPy arrays.

    Example:
    >>> result = worked_example()
    >>> np.round(result["query"][0], 2).tolist()
    [0.54, 0.37, 0.47, 0.57]
    >>> round(float(result["scores"][0, 0]), 4)  # (Q0 . K0) / sqrt(4)
    0.5117
    >>> np.allclose(result["weights"].sum(axis=-1), 1.0)
    True
    """
    layer = attention_layer_with_example_weights()
    x = EMBEDDINGS[None]
    query = np.asarray(layer.query_dense(x))[0, :, 0]
    key = np.asarray(layer.key_dense(x))[0, :, 0]
    value = np.asarray(layer.value_dense(x))[0, :, 0]
    output, weights = layer(x, x, return_attention_scores=True)
    scale = np.sqrt(EMBEDDINGS.shape[-1])
    result = {
        "query": query,
        "key": key,
        "value": value,
        "scores": query @ key.T / scale,
        "weights": np.asarray(weights)[0, 0],
        "output": np.asarray(output)[0],
    }
    # float64 so that printed, rounded values read as the decimals they are.
    return {name: value.astype("float64") for name, value in result.items()}
