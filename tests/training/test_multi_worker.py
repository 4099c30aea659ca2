"""`--strategy multi-worker` through the CLI: two worker processes on 127.0.0.1 train the
model one process would with the same global batch, and a job whose worker was killed
resumes, on every worker, from the chief's last checkpoint."""

import csv
import json
import os
import signal
import subprocess
import time
import types

import numpy as np
import pytest
import tensorflow as tf

from keras_mapping.training import engine
from keras_mapping.training.distribute import WorkerLost, loopback_cluster
from tests.helpers import assert_same_weights, cli_command, run_cli_here

RECIPE = ("--epochs", "2", "--learning-rate", "5e-3", "--max-length", "32", "--dropout", "0",
          "--no-freeze-embeddings", "--evaluations-per-epoch", "2", "--precision", "fp32",
          "--checkpoint-every", "2", "--verbose", "0")


def finetune_command(preset, dataset, out, *flags):
    return cli_command("finetune", "--preset", preset, "--dataset", dataset, "--out", out,
                       *RECIPE, *flags)


def start_workers(command, count=2):
    return [subprocess.Popen(command, env={**os.environ, "TF_CONFIG": config},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for config in loopback_cluster(count)]


def finish(processes, timeout=300):
    """Waits for every process; returns `(exit status, stdout, stderr)` of each."""
    results = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=timeout)
            results.append((process.returncode, stdout, stderr))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    return results


def run_job(command):
    """Runs a job of two workers to its end; returns their standard outputs.

    A job whose worker the coordination service declared lost (its heartbeats missed
    TensorFlow's 10 s timeout while the machine's two cores ran other tests too: seen once,
    on the chief) stops with exit status 2 and the resume advice; it is started once more,
    as the README tells users to, and resumes from its last checkpoint: the assertions on
    its end hold either way."""
    results = finish(start_workers(command))
    if any(code == 2 and "stopped answering" in stderr for code, _, stderr in results):
        results = finish(start_workers(command))
    for code, _, stderr in results:
        assert code == 0, stderr[-3000:]
    return [stdout for _, stdout, _ in results]


def one_worker_run(preset, dataset, out):
    """The one-worker reference, in this process: the same command, no start-up cost."""
    run_cli_here(finetune_command(preset, dataset, out, "--batch-size", "16",
                                  "--strategy", "default"))


@pytest.fixture(scope="module")
def one_worker_model(tiny_preset, tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("one_worker") / "model"
    one_worker_run(tiny_preset, tiny_dataset, out)
    return out


def wait_for_checkpoint(out, step, processes, timeout=240):
    progress = out / ".run" / "checkpoints" / "progress.json"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if progress.is_file() and json.loads(progress.read_text())["step"] >= step:
            return
        assert all(process.poll() is None for process in processes), "a worker stopped"
        time.sleep(0.02)
    raise AssertionError(f"no checkpoint at step {step} within {timeout} s")


def test_a_killed_worker_then_a_restarted_job_resumes_to_the_same_model(
        tiny_preset, tiny_dataset, one_worker_model, tmp_path):
    out = tmp_path / "killed"
    command = finetune_command(tiny_preset, tiny_dataset, out, "--batch-size", "8",
                               "--strategy", "multi-worker")
    processes = start_workers(command)
    try:
        wait_for_checkpoint(out, 4, processes)
        processes[1].send_signal(signal.SIGKILL)
        # The chief cannot go on without its peer: it stops, saying what to do.
        _, stderr = processes[0].communicate(timeout=120)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    assert processes[0].returncode == 2, stderr[-3000:]
    assert "worker /job:worker/replica:0/task:1 stopped answering" in stderr
    assert "Start every worker again with the same command" in stderr
    assert not (out / "model.keras").exists(), "the run ended before the kill"
    run_job(command)
    # Two workers with half the batch each train the one-worker model, across the restart.
    assert_same_weights(out, one_worker_model, atol=1e-5)
    config = json.loads((out / "training_config.json").read_text())
    assert config["strategy"] == "multi-worker"
    assert not (out / ".run").exists()  # the chief cleaned up; the other worker wrote nothing


# What the chief printed when, beside other heavy processes, the coordination service took
# its own heartbeats for missing (TensorFlow's timeout is 10 s).
HEARTBEAT_ABORT = (
    "Collective ops is aborted by: Unexpected heartbeat request from an already-in-error "
    "task: /job:worker/replica:0/task:0 with existing error: UNAVAILABLE: Task "
    "/job:worker/replica:0/task:0 heartbeat timeout")


@pytest.mark.parametrize("error", [tf.errors.AbortedError, tf.errors.UnavailableError])
def test_a_missed_heartbeat_stops_a_worker_with_the_resume_advice(error, tmp_path,
                                                                    monkeypatch):
    run = types.SimpleNamespace(strategy=None, checkpoints=tmp_path / "checkpoints",
                                shared=tmp_path)
    with pytest.raises(error):  # on one machine, TensorFlow's error as it came
        with engine.a_lost_worker_stops_the_run(run, "pretrain"):
            raise error(None, None, HEARTBEAT_ABORT)
    monkeypatch.setattr(engine, "is_multi_worker", lambda strategy: True)
    with pytest.raises(WorkerLost) as lost:
        with engine.a_lost_worker_stops_the_run(run, "pretrain"):
            raise error(None, None, HEARTBEAT_ABORT)
    assert str(lost.value) == (
        "pretrain: worker /job:worker/replica:0/task:0 stopped answering, so this worker "
        "stops too. Start every worker again with the same command: all resume from the "
        f"last checkpoint (step 0) in {tmp_path}.")


PRETRAIN_RECIPE = ("--preset", "bert_tiny", "--train-vocab", "--vocab-size", "120",
                   "--steps", "20", "--steps-per-round", "10", "--learning-rate", "2e-3",
                   "--max-length", "16", "--dropout", "0", "--precision", "fp32",
                   "--verbose", "0")


def pretrain_command(corpus, out, *flags):
    return cli_command("pretrain", "--corpus", corpus, "--out", out, *PRETRAIN_RECIPE, *flags)


def preset_weights(directory):
    from safetensors.numpy import load_file

    return load_file(str(directory / "model.safetensors"))


def write_corpus(path, documents, seed=0):
    rng = np.random.default_rng(seed)
    words = "the a film story cast plot was is good bad long short".split()
    path.write_text("\n\n".join(" ".join(rng.choice(words, 8)) for _ in range(documents)))
    return path


def test_two_workers_pretrain_the_one_worker_preset(tmp_path):
    # One file for two workers: each streams it whole and trains on its share of every
    # global batch, as one machine would.
    corpus = write_corpus(tmp_path / "corpus.txt", 120)
    run_job(pretrain_command(corpus, tmp_path / "two", "--batch-size", "8",
                             "--strategy", "multi-worker"))
    # The one-worker reference runs in this process (the same command, no start-up cost).
    run_cli_here(pretrain_command(corpus, tmp_path / "one", "--batch-size", "16",
                                  "--strategy", "default"))
    two, one = preset_weights(tmp_path / "two"), preset_weights(tmp_path / "one")
    assert two.keys() == one.keys()
    for name in one:
        np.testing.assert_allclose(two[name], one[name], atol=1e-5, err_msg=name)


def test_two_workers_stream_their_own_files_of_a_larger_corpus(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for index in range(2):
        write_corpus(corpus / f"part{index}.txt", 80, seed=index)
    outputs = run_job(pretrain_command(corpus, tmp_path / "out", "--batch-size", "8",
                                       "--strategy", "multi-worker", "--verbose", "2"))
    for index, stdout in enumerate(outputs):
        assert f"worker {index} of 2 reads 1 of the 2 files" in stdout
    assert (tmp_path / "out" / "config.json").is_file()  # the chief published the preset
    metrics = json.loads(outputs[0].strip().splitlines()[-1])
    assert metrics["mlm_accuracy"] > 0
    with open(tmp_path / "out" / "logs" / "training.csv") as handle:  # across a resume too
        losses = [float(row["loss"]) for row in csv.DictReader(handle)]
    assert len(losses) == 2 and losses[-1] < losses[0], losses
