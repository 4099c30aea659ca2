"""The state of a run in its output directory: refusing to mix runs (a killed run resumes
through `keras_mapping.training.resumable`)."""

import json
from dataclasses import asdict, fields
from pathlib import Path

from keras_mapping.checkpoints import model_dir

RUN_STATE_DIR = ".run"


class Recipe:
    """Conversions shared by the dataclass recipes (`FinetuneConfig`, `PretrainConfig`)."""

    def to_dict(self):
        return asdict(self)

    def refuse_invalid(self, checks, expected=None):
        """Raises ValueError for the first field whose check failed, with its value and,
        when `expected` says, what it should be.

        Args:
            checks: `{field name: whether its value is valid}`.
            expected: `{field name: what a valid value is}`, for the message.
        """
        expected = expected or {}
        for name, valid in checks.items():
            if not valid:
                raise ValueError(f"Invalid `{name}`: {getattr(self, name)!r}"
                                 + (f"; expected {expected[name]}." if name in expected
                                    else "."))

    @classmethod
    def from_dict(cls, values):
        """The recipe from a stored dict; keys this version does not know are ignored."""
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


def check_output_directory(out, recipe, finished_marker):
    """Refuses to mix runs in `out`: a finished run (`finished_marker` exists), a folder of
    other files, or an unfinished run of another recipe. An unfinished run of the same
    recipe is fine: it resumes.

    Args:
        out: the output directory.
        recipe: the run's settings as a dict (stored as `training_config.json`).
        finished_marker: the file name whose presence means the run finished.
    """
    out = Path(out)
    saved = out / model_dir.TRAINING_CONFIG_FILE
    if not saved.is_file():
        if out.exists() and any(out.iterdir()):
            raise FileExistsError(
                f"Output directory '{out}' is not empty and holds no keras-mapping run; "
                "choose another --out.")
        return
    previous = json.loads(saved.read_text(encoding="utf-8"))
    if (out / finished_marker).is_file():
        raise FileExistsError(
            f"Output directory '{out}' already holds a finished run; choose another --out "
            "or delete it.")
    if previous != recipe:
        changed = sorted(k for k in recipe if previous.get(k) != recipe[k])
        raise FileExistsError(
            f"Output directory '{out}' holds an unfinished run with a different recipe "
            f"(differs in: {', '.join(changed)}); rerun it with the same settings to resume, "
            "or choose another --out.")

