"""What a task is to the engine: the one place that says how rows become examples, which
head goes on the backbone, what `evaluate` reports, what `predict` prints and what an export
returns. `finetune`, `evaluate`, `predict`, `export` and `plot` know tasks only through this
interface (see `keras_mapping.training.engine`)."""

from abc import ABC, abstractmethod

import numpy as np

from keras_mapping.data.layout import Columns
from keras_mapping.data.pipelines import text_dataset, tokenize_texts, truncated_count
from keras_mapping.data.readers import TargetTexts


TEXT_MAX_LENGTH = 64
PAIR_MAX_LENGTH = 128


class TextTask(ABC):
    """A task on a text (or a text pair) per row. Subclasses fill in the label side.

    Args:
        columns: the `Columns` it reads.

    Class attributes:
        name: the `--task` value.
        monitor: the key of `report()` that picks the best weights (higher is better).
        output_activation: turns the model's outputs into what an exported model returns
            (a Keras activation name: "softmax", "linear", "sigmoid").
        modality: "text" for every task here (`ImageClassificationTask` has "image"): the
            model directory keeps a tokenizer, `predict` prints each row's "text".
        keeps_validation_batches: whether a run keeps the validation batches in memory
            after the first round instead of building them again each round.
    """

    name = None
    monitor = None
    output_activation = "linear"
    # What an example is: "text" (the texts go through a tokenizer) or "image".
    modality = "text"
    # The token ids are in memory already, and padded batches are a few times their size;
    # starting the packer's graph again costs about 0.1 s a round (a fifth of a tiny run).
    keeps_validation_batches = True

    def __init__(self, columns):
        self.columns = columns

    @property
    def default_max_length(self):
        """The sequence length a recipe takes when it names none: sentence pairs need
        room for two sentences."""
        return PAIR_MAX_LENGTH if self.pairs else TEXT_MAX_LENGTH

    @property
    def pairs(self):
        """Whether examples are text pairs."""
        return self.columns.text_pair is not None

    def recipe_defaults(self, train_examples, method, pretrained):
        """Recipe fields this task sets when the user leaves them unset, over the text
        recipes of `keras_mapping.training.finetune`: none."""
        return {}

    # -- data -------------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def from_training_table(cls, table, columns, **options):
        """The task with the label set learned from the training `Table`."""

    @abstractmethod
    def examples(self, table):
        """The examples of a `Table` (its labels checked against this task's label set;
        errors name `file:line`)."""

    def describe(self):
        """The task and what it reads, for run logs."""
        columns = self.columns.text + (f" + {self.columns.text_pair}" if self.pairs else "")
        return f"{self.name} of {'text pairs' if self.pairs else 'texts'} ({columns})"

    def texts_of(self, table):
        """`(texts, text_pairs or None)` of a table's text columns."""
        pairs = table.texts(self.columns.text_pair, "the text pair") if self.pairs else None
        return table.texts(self.columns.text), pairs

    def unlabeled(self, texts, text_pairs=None):
        """Examples to predict: the texts with placeholder targets."""
        return TargetTexts(list(texts), np.zeros(len(texts), "int32"), "predict",
                           None if text_pairs is None else list(text_pairs))

    def dataset(self, examples, tokenizer, max_length, batch_size, **options):
        """Batches of `(features, targets)` of `examples` for the model (options: those of
        `keras_mapping.data.text_dataset`)."""
        return text_dataset(examples, tokenizer, max_length=max_length, batch_size=batch_size,
                            **options)

    def truncated(self, examples, tokenizer, max_length):
        """How many examples are longer than `max_length` tokens (and so cut)."""
        return truncated_count(examples, tokenizer, max_length)

    def prepared(self, examples, tokenizer, max_length):
        """`examples` in the form `dataset` and `truncated` read fastest, for a run that
        reads them many times: texts become token ids once here."""
        return tokenize_texts(examples, tokenizer, max_length)

    # -- model ------------------------------------------------------------------------------
    @abstractmethod
    def build_model(self, backbone, dropout, pooling):
        """The task's head on `backbone`, returning logits or scores."""

    # -- results ----------------------------------------------------------------------------
    @abstractmethod
    def report(self, outputs, examples):
        """`evaluate`'s metrics of model `outputs` on `examples` (a flat JSON-able dict)."""

    @abstractmethod
    def rows(self, outputs):
        """What `predict` prints for each row of `outputs`, without the text."""

    def predicted_rows(self, outputs, examples, tokenizer):
        """`rows()` of the outputs of a `predict` batch of `examples` (tasks whose rows need
        the texts themselves, such as token classification, read them here)."""
        return self.rows(np.asarray(outputs, "float64"))

    @abstractmethod
    def serving_outputs(self, outputs):
        """The numeric outputs of an exported model (keras.ops on the model's outputs)."""

    @property
    def label_names(self):
        """The names of the label ids an export maps `label_id` to, or None."""
        return None

    # -- storage ----------------------------------------------------------------------------
    def config(self):
        """What `task.json` stores: enough for `task_from_config` to rebuild the task."""
        return {"task": self.name, "columns": self.columns.to_dict()}

    @classmethod
    @abstractmethod
    def from_config(cls, config):
        """The task from what `config()` stored."""

    @staticmethod
    def columns_from(config):
        return Columns.from_dict(config["columns"])


def rounded(values, digits=6):
    """Floats rounded for printing, as a list."""
    return [round(float(value), digits) for value in np.ravel(values)]
