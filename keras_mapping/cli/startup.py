"""Start-up of the `keras-mapping` command before TensorFlow loads.

Imports no TensorFlow: `keras_mapping/__init__.py` calls `quiet_startup()` before its own first
TensorFlow import (a separate module from `main`, which `python -m` runs as `__main__`).
"""

import os
import re
import sys
import tempfile

# TensorFlow's glog-style log lines: severity letter, mmdd, hh:mm:ss.micros (00:00:epoch.micros
# before absl::InitializeLog), thread, file:line].
_LOG_LINE = re.compile(r"([IWEF])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] ")


def _started_as_cli():
    """Whether this process is the `keras-mapping` command or `python -m keras_mapping.cli.main`."""
    argv = getattr(sys, "orig_argv", sys.argv)
    module = argv[argv.index("-m") + 1] if "-m" in argv[:-1] else None
    return (os.path.basename(sys.argv[0]) in ("keras-mapping", "keras-mapping.exe")
            or module in ("keras_mapping.cli.main", "keras_mapping.cli"))


def _drop_startup_lines(text, level):
    """`text` less the log lines below `TF_CPP_MIN_LOG_LEVEL` `level` (2: INFO and WARNING;
    3: ERROR too), their continuation lines and absl's "before InitializeLog" notice."""
    dropped = "IWE"[:max(0, min(level, 3))]
    kept, dropping = [], False
    for line in text.splitlines(keepends=True):
        match = _LOG_LINE.match(line)
        if match or line.startswith("WARNING: All log messages before absl::InitializeLog()"):
            dropping = not match or match.group(1) in dropped
        if not dropping:
            kept.append(line)
    return "".join(kept)


def quiet_startup():
    """For the `keras-mapping` command: defaults `KERAS_BACKEND=tensorflow` and
    `TF_CPP_MIN_LOG_LEVEL=3`, and imports TensorFlow without its C++ start-up lines.

    Why: TF_CPP_MIN_LOG_LEVEL silences TensorFlow's own logging (the "cpu_feature_guard" line),
    but in TF 2.21 the lines written before absl::InitializeLog() runs ("oneDNN custom operations
    are on", "Could not find cuda drivers") go straight to file descriptor 2 whatever the
    environment says. So descriptor 2 points at a temporary file during `import tensorflow` only,
    and is then restored (later errors reach stderr as usual); what was written meanwhile is
    written back, less the log lines below the level in force. Rule: a user who set
    TF_CPP_MIN_LOG_LEVEL to 0 or 1 asked for INFO or WARNING lines, and gets them all; with 2 or 3
    (or unset, which means 3 here) they are dropped. A library user's `import keras_mapping` is
    left alone. Should TensorFlow abort while importing, its message is lost with the temporary
    file: rerun with TF_CPP_MIN_LOG_LEVEL=0 to see it.
    """
    if not _started_as_cli() or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    level = os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3").strip()
    if not (level.isdigit() and int(level) >= 2):
        return  # the user asked for TensorFlow's INFO/WARNING lines
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            sys.stderr.write(_drop_startup_lines(
                captured.read().decode("utf-8", errors="replace"), int(level)))
            sys.stderr.flush()
