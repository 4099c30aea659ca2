"""Runs that die, diverge or repeat: a `finetune` process killed with SIGKILL resumes when the
same command runs again; same seeds give the same run; a NaN loss stops the run."""

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from keras_mapping.tasks.model_directory import load_model_directory
from tests.helpers import AtStep, cli_command, run_cli_here


def finetune_command(tiny_preset, tiny_dataset, out):
    # Dropout stays on (0.1): its random state is part of what a resumed run must restore.
    return cli_command("finetune", "--preset", tiny_preset, "--dataset", tiny_dataset,
                       "--out", out, "--epochs", "4", "--batch-size", "16",
                       "--evaluations-per-epoch", "2", "--checkpoint-every", "1",
                       "--learning-rate", "5e-3", "--max-length", "32", "--precision", "fp32",
                       "--deterministic", "--seed", "7", "--verbose", "0")


def saved_step(out):
    progress = out / ".run" / "checkpoints" / "progress.json"
    try:
        return json.loads(progress.read_text())["step"]
    except (OSError, ValueError):
        return 0


def test_sigkill_mid_round_then_rerun_matches_an_uninterrupted_run(tiny_preset, tiny_dataset,
                                                                   tmp_path):
    # The uninterrupted run needs no process of its own: the same command, in this one.
    straight = tmp_path / "straight"
    run_cli_here(finetune_command(tiny_preset, tiny_dataset, straight))

    # 96 examples in batches of 16, two rounds per epoch: rounds of 3 steps, 24 in all.
    resumed = tmp_path / "resumed"
    command = finetune_command(tiny_preset, tiny_dataset, resumed)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while process.poll() is None and time.time() < deadline:
        step = saved_step(resumed)
        if step >= 8 and step % 3:  # kill while a round after the first few is under way
            break
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = saved_step(resumed)
    assert 8 <= killed_at < 24
    assert not (resumed / "model.keras").exists()  # an unfinished run never looks finished

    rerun = subprocess.run(command, check=True, capture_output=True, text=True)
    assert f"resuming the killed run at step {killed_at} of 24" in rerun.stdout
    log = (resumed / "logs" / "training.csv").read_text().splitlines()
    assert len(log) >= 9  # header + 8 rounds, the interrupted round possibly twice
    for a, b in zip(load_model_directory(straight).model.get_weights(),
                    load_model_directory(resumed).model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert json.loads((resumed / "metrics.json").read_text())["accuracy"] == json.loads(
        (straight / "metrics.json").read_text())["accuracy"]


def test_same_seed_gives_identical_runs(tiny_preset, tiny_dataset, tmp_path):
    from keras_mapping.training import FinetuneConfig, finetune

    runs = []
    for name in ("first", "second"):
        config = FinetuneConfig(preset=str(tiny_preset), dataset=str(tiny_dataset),
                                out=str(tmp_path / name), epochs=2, batch_size=16,
                                learning_rate=5e-3, max_length=32, precision="fp32",
                                deterministic=True, seed=7)
        runs.append(finetune(config, verbose=0, print_fn=lambda *_: None))
    for key in ("accuracy", "loss", "f1", "confusion_matrix", "best_round"):
        assert runs[0][key] == runs[1][key]
    for a, b in zip(load_model_directory(tmp_path / "first").model.get_weights(),
                    load_model_directory(tmp_path / "second").model.get_weights()):
        np.testing.assert_array_equal(a, b)


def poison_logits(model):
    kernel = model.get_layer("logits").kernel
    kernel.assign(np.full(kernel.shape, np.nan, "float32"))


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_weights(tiny_preset, tiny_dataset,
                                                                   tmp_path):
    from keras_mapping.training import FinetuneConfig, finetune

    out = tmp_path / "poisoned"
    config = FinetuneConfig(preset=str(tiny_preset), dataset=str(tiny_dataset), out=str(out),
                            epochs=3, batch_size=16, evaluations_per_epoch=1,
                            learning_rate=5e-3, max_length=32, precision="fp32")
    with pytest.raises(FloatingPointError, match=r"Training loss became nan at step 9 of this "
                                                 r"run; the last good weights are in .*"
                                                 r"best\.weights\.h5 \(round 1\)"):
        finetune(config, callbacks=[AtStep(8, poison_logits)], verbose=0)
    assert not (out / "model.keras").exists()
    best = out / ".run" / "best.weights.h5"
    import h5py

    with h5py.File(best) as weights:  # intact: it opens, and every weight is finite
        values = []
        weights.visititems(lambda name, item: values.append(item[()])
                           if isinstance(item, h5py.Dataset) else None)
    assert values and all(np.isfinite(value).all() for value in values)


def test_max_length_above_the_position_limit_is_refused(tiny_preset, tiny_dataset, tmp_path):
    from keras_mapping.training import FinetuneConfig, finetune

    config = FinetuneConfig(preset=str(tiny_preset), dataset=str(tiny_dataset),
                            out=str(tmp_path / "long"), max_length=100)
    with pytest.raises(ValueError, match="`max_length=100` is above the 64 positions of "
                                         "preset"):
        finetune(config, verbose=0)
    assert not (tmp_path / "long").exists()  # refused before anything is written
