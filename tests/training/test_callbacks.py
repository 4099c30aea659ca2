import keras
import numpy as np
import pytest

from keras_mapping.models import BertBackbone, BertTextClassifier
from keras_mapping.training import GradualUnfreezing


def tiny_classifier():
    backbone = BertBackbone(vocabulary_size=50, num_layers=2, num_heads=2, hidden_dim=8,
                            intermediate_dim=16, max_sequence_length=16, dropout=0.0)
    return BertTextClassifier(backbone, num_classes=2, dropout=0.0)


def test_schedule_goes_top_down_then_embeddings():
    unfreezing = GradualUnfreezing(tiny_classifier().backbone, rounds_per_layer=2,
                                   freeze_embeddings=False)
    schedule = [(unfreezing.frozen_layers(r), unfreezing.embeddings_frozen(r))
                for r in range(6)]
    assert schedule == [(1, True), (1, True), (0, True), (0, True), (0, False), (0, False)]


def test_min_frozen_layers_stay_frozen():
    unfreezing = GradualUnfreezing(tiny_classifier().backbone, min_frozen_layers=1,
                                   freeze_embeddings=False)
    assert [unfreezing.frozen_layers(r) for r in range(4)] == [1, 1, 1, 1]
    assert all(unfreezing.embeddings_frozen(r) for r in range(4))


@pytest.mark.parametrize("arguments, message", [
    (dict(rounds_per_layer=0), "rounds_per_layer"),
    (dict(min_frozen_layers=2), "min_frozen_layers"),
])
def test_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        GradualUnfreezing(tiny_classifier().backbone, **arguments)


def test_each_part_starts_training_in_its_round():
    model = tiny_classifier()
    backbone = model.backbone
    model.compile(optimizer=keras.optimizers.AdamW(1e-2), loss="sparse_categorical_crossentropy")
    unfreezing = GradualUnfreezing(backbone, rounds_per_layer=1, freeze_embeddings=False)
    unfreezing.build_optimizer(model)
    parts = {"embeddings": backbone.embeddings, "layer_0": backbone.encoder_layers[0],
             "layer_1": backbone.encoder_layers[1]}
    snapshots = [{name: [np.array(w) for w in part.weights] for name, part in parts.items()}]

    class Snapshot(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append({name: [np.array(w) for w in part.weights]
                              for name, part in parts.items()})

    rng = np.random.default_rng(0)
    inputs = {"token_ids": rng.integers(1, 50, (32, 8)).astype("int32"),
              "segment_ids": np.zeros((32, 8), "int32"), "padding_mask": np.ones((32, 8), bool)}
    labels = rng.integers(0, 2, 32)
    model.fit(inputs, labels, epochs=3, batch_size=8, verbose=0,
              callbacks=[unfreezing, Snapshot()])

    def changed(round_index, name):
        before, after = snapshots[round_index][name], snapshots[round_index + 1][name]
        return any(not np.array_equal(a, b) for a, b in zip(before, after))

    assert [changed(0, n) for n in parts] == [False, False, True]
    assert [changed(1, n) for n in parts] == [False, True, True]
    assert [changed(2, n) for n in parts] == [True, True, True]
