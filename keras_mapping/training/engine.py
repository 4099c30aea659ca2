"""The run skeleton every training verb shares (`finetune` for every task, `pretrain` for
every objective): where it computes, the output directory, data checked before anything is
written, seeds and precision, resumable rounds with logs, and the cleanup at the end.

A verb supplies only what differs: its data, its model and its callbacks. Several workers
run the same skeleton: the chief (the first worker) writes the run's files; the others
write theirs to a scratch folder they remove at the end, and read the chief's checkpoints
to resume.
"""

import contextlib
import csv
import math
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import tensorflow as tf

from keras_mapping.checkpoints import model_dir
from keras_mapping.training.callbacks import StopOnNonFiniteLoss
from keras_mapping.training.distribute import (WorkerLost, is_chief, is_multi_worker,
                                               share_of_each_batch, train_across_replicas,
                                               this_workers_batches)
from keras_mapping.training.precision import PRECISION_POLICIES, resolve_precision
from keras_mapping.training.resumable import resumable_fit, saved_step
from keras_mapping.training.run_state import RUN_STATE_DIR, check_output_directory


@dataclass
class Run:
    """An open run: its strategy, directories and precision.

    Args:
        strategy: the `tf.distribute` strategy models are built under.
        out: where this process writes: the output directory (on workers other than the
            chief, a scratch folder).
        precision: the resolved precision ("fp32", "bf16" or "fp16").
        shared: the output directory, whose checkpoints every worker resumes from.
    """

    strategy: object
    out: Path
    precision: str
    shared: Path

    @property
    def replicas(self):
        return self.strategy.num_replicas_in_sync

    @property
    def chief(self):
        """Whether this process writes the run's results."""
        return self.out == self.shared

    @property
    def state(self):
        """Where checkpoints and best weights live until the run ends."""
        return self.out / RUN_STATE_DIR

    @property
    def checkpoints(self):
        """The checkpoints every worker resumes from (the chief's)."""
        return self.shared / RUN_STATE_DIR / "checkpoints"


def open_run(config, strategy, finished_marker):
    """Starts a run of `config` (a recipe with `out`, `seed` and `precision`) whose data the
    verb has already read and checked, so that bad data leaves no run behind: refuses an
    output directory holding something else (an unfinished run of the same recipe resumes),
    creates it with the recipe in it, seeds every generator and sets the precision policy.

    Args:
        config: the recipe, its data-dependent defaults resolved.
        strategy: from `create_strategy`, made before TensorFlow ran anything.
        finished_marker: the file whose presence means a run in `config.out` finished.

    Returns:
        The `Run`.
    """
    out = Path(config.out)
    if is_chief(strategy):
        check_output_directory(out, config.to_dict(), finished_marker)
    else:
        out = Path(tempfile.mkdtemp(prefix="keras-mapping-worker-"))
    run = Run(strategy, out, resolve_precision(config.precision), shared=Path(config.out))
    run.state.mkdir(parents=True, exist_ok=True)
    model_dir.write_json_atomically(run.out / model_dir.TRAINING_CONFIG_FILE, config.to_dict())
    keras.utils.set_random_seed(config.seed)
    if getattr(config, "deterministic", False):
        tf.config.experimental.enable_op_determinism()
    keras.config.set_dtype_policy(PRECISION_POLICIES[run.precision])
    return run


@dataclass(frozen=True)
class Rounds:
    """How a run's steps split into rounds (Keras epochs: validation, best weights and a
    checkpoint at each end)."""

    rounds: int
    steps_per_round: int

    @property
    def steps(self):
        return self.rounds * self.steps_per_round

    @classmethod
    def of_epochs(cls, examples, global_batch_size, epochs, rounds_per_epoch):
        steps_per_epoch = math.ceil(examples / global_batch_size)
        total = max(1, round(epochs * steps_per_epoch))
        rounds = max(1, round(epochs * rounds_per_epoch))
        return cls(rounds, math.ceil(total / rounds))

    @classmethod
    def of_steps(cls, steps, steps_per_round):
        rounds = math.ceil(steps / steps_per_round)
        return cls(rounds, math.ceil(steps / rounds))


def train_rounds(run, model, train_batches, rounds, *, checkpoint_every, callbacks=(),
                 validation_data=None, tensorboard=False, verbose=1, print_fn=print,
                 verb="train", per_worker=False):
    """Trains `model` over `rounds`, resuming a killed run from its last checkpoint, with a
    NaN guard first and a CSV log (and TensorBoard) last.

    Args:
        train_batches: `train_batches(step)` builds the training data from batch `step` on
            (see `resumable_fit`).
        rounds: a `Rounds`.
        checkpoint_every: steps between checkpoints within a round (0: round ends only).
        callbacks: the verb's callbacks, in the order they must see each round's logs (a
            `StopOnNonFiniteLoss` goes first when none is among them).
        per_worker: `train_batches` gives this worker's own batches (read from its share
            of the files); otherwise global batches, which workers split.

    Returns:
        `(training seconds, the step the run resumed from)`.
    """
    resumed_at = saved_step(run.checkpoints)
    if resumed_at:
        print_fn(f"{verb}: resuming the killed run at step {resumed_at:,} of {rounds.steps:,}")
    first_batches = train_batches(resumed_at)
    if run.replicas > 1:
        train_across_replicas(model, first_batches.element_spec)
    else:
        build_before_the_first_step(model, first_batches.element_spec, run.strategy)
    logs = run.out / "logs"
    logs.mkdir(exist_ok=True)
    callbacks = list(callbacks)
    if not any(isinstance(c, StopOnNonFiniteLoss) for c in callbacks):
        callbacks.insert(0, StopOnNonFiniteLoss())
    loggers = [keras.callbacks.CSVLogger(str(logs / "training.csv"), append=True)]
    if tensorboard:
        loggers.append(keras.callbacks.TensorBoard(str(logs / "tensorboard"), write_graph=False))
    started = time.time()
    distribute = this_workers_batches if per_worker else share_of_each_batch
    batches = reusing_the_first(first_batches, resumed_at, train_batches)
    with a_lost_worker_stops_the_run(run, verb):
        resumable_fit(
            model, lambda step: distribute(batches(step), run.strategy),
            rounds=rounds.rounds, steps_per_round=rounds.steps_per_round,
            directory=run.checkpoints, save=run.chief, checkpoint_every=checkpoint_every,
            callbacks=callbacks + loggers,
            validation_data=this_workers_batches(validation_data, run.strategy),
            shuffle=False,  # the pipelines shuffle, seeded
            verbose=verbose)
    return time.time() - started, resumed_at


@contextlib.contextmanager
def a_lost_worker_stops_the_run(run, verb):
    """Turns TensorFlow's errors for a worker of a multi-worker run that stopped answering
    into `WorkerLost`, whose message says how to resume. `UnavailableError`: a peer's
    connection failed. `AbortedError`: the coordination service aborted the collectives
    after a missed heartbeat, a peer's or this worker's own (a process starved of CPU past
    TensorFlow's heartbeat timeout). On one machine both pass through unchanged."""
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.AbortedError) as error:
        if not is_multi_worker(run.strategy):
            raise
        raise WorkerLost(
            f"{verb}: {_lost_worker(error.message)} stopped answering, so this worker stops "
            f"too. Start every worker again with the same command: all resume from the last "
            f"checkpoint (step {saved_step(run.checkpoints):,}) in {run.shared}.") from None


def build_before_the_first_step(model, element_spec, strategy):
    """Creates the variables Keras would create inside the first trace of the training step
    on one device: the optimizer's slots and, for a model of several outputs, the compiled
    loss's trackers (a `Mean` per output). A `tf.function` that creates variables is traced
    a second time: a whole training step's trace, 4 s of a small ResNet's run and 2 s of a
    tiny masked LM + NSP pretraining run. `model` is functional (its outputs are symbolic).
    The one other such piece, an F-score's state, is built by `Task.compile`, which holds
    the metric objects and the output shape they need."""
    with strategy.scope():
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        loss = model._compile_loss
        if loss is not None and not loss.built:
            # From the model's symbolic outputs: no forward pass (Keras' own symbolic build
            # traces one, 0.9 s of the tiny run).
            _, labels, _ = keras.utils.unpack_x_y_sample_weight(element_spec)
            loss.build(keras.tree.map_structure(_symbolic, labels), model.output)


def _symbolic(spec):
    return keras.KerasTensor(spec.shape, spec.dtype.name)


def reusing_the_first(first_batches, first_step, train_batches):
    """`train_batches`, except that its first call, from `first_step`, returns
    `first_batches` (built already for its spec) instead of building them again."""
    unused = [first_batches]

    def batches(step):
        if unused and step == first_step:
            return unused.pop()
        unused.clear()
        return train_batches(step)

    return batches


def _lost_worker(message):
    """The task TensorFlow's collective error names as unhealthy, else its first line."""
    # A heartbeat error names the same task twice ("... task:0 with existing error: ...
    # Task ... task:0 heartbeat timeout"): each is named once, in order.
    tasks = dict.fromkeys(re.findall(r"/job:\w+/replica:\d+/task:\d+",
                                     message.split("unhealthy")[-1]))
    return f"worker {', '.join(tasks)}" if tasks else f"a worker ({message.splitlines()[0]})"


def last_logged(run, name):
    """`name` (e.g. `val_accuracy`) as the run's CSV log has it for the last round, or None:
    a best round chosen on the validation set is reported beside the last one."""
    path = run.out / "logs" / "training.csv"
    rows = []
    if path.is_file():
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    value = rows[-1].get(name) if rows else None
    return None if value in (None, "") else round(float(value), 6)


def close_run(run, metrics, started):
    """Removes the run's state (checkpoints, best weights) and stamps the wall time."""
    shutil.rmtree(run.state if run.chief else run.out, ignore_errors=True)
    metrics["wall_seconds"] = round(time.time() - started, 1)
    return metrics
