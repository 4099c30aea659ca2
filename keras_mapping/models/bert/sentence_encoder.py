"""Sentence embeddings: BERT followed by masked mean pooling and L2 normalization."""

import keras

from keras_mapping.layers import MaskedMeanPooling
from keras_mapping.models.bert.task import BertTask


@keras.saving.register_keras_serializable(package="keras_mapping")
class BertSentenceEncoder(BertTask):
    """One vector per input text: the mean of the backbone's outputs over real tokens.

    With the `minilm_l6` preset this reproduces the sentence-transformers embedding of
    all-MiniLM-L6-v2 (cosine >= 0.99999 against the reference).

    Args:
        backbone: a `BertBackbone`.
        normalize: L2-normalize the embeddings (so dot products are cosine similarities).
        **kwargs: base `keras.Model` arguments.

    Example:
    >>> from keras_mapping.tokenizers import BertTextPreprocessor, BertTokenizer
    >>> encoder = BertSentenceEncoder.from_preset("minilm_l6")
    >>> preprocess = BertTextPreprocessor(BertTokenizer.from_preset("minilm_l6"),
    ...                                   max_length=32)
    >>> embeddings = encoder.predict(preprocess(["A good film.", "A great movie."]), verbose=0)
    >>> embeddings.shape
    (2, 384)
    """

    def __init__(self, backbone, normalize=True, **kwargs):
        self.backbone = backbone
        self.pooling = MaskedMeanPooling(normalize=normalize, dtype="float32",
                                         name="mean_pooling")
        inputs = backbone.input
        sequence = backbone(inputs)["sequence_output"]
        embedding = self.pooling(sequence, padding_mask=inputs["padding_mask"])
        super().__init__(inputs=inputs, outputs=embedding, **kwargs)
        self.normalize = normalize

    def task_config(self):
        return {"normalize": self.normalize}
