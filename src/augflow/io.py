"""Atomic file writes and careful reads. A crash never leaves a half file a later stage trusts."""

from __future__ import annotations

import errno
import glob
import json
import os
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import numpy as np
import pandas as pd

from augflow.errors import AugflowError


# Crash testing: when set to a path suffix (e.g. "prepared/schema.json"), the process group is
# killed with SIGKILL after that file's bytes are written and before they are renamed into place
# (tests/test_reruns.py). Unset in normal runs.
CRASH_ENV = "AUGFLOW_CRASH_BEFORE_RENAME"

_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it over `path` only if the block succeeds.
    Temp files of this same target left by a killed earlier run are removed first (one stage
    owns each output, so no live writer can hold them)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp's random part is 8 characters: the pattern matches this target's temp files only,
    # not those of a sibling whose name starts with this one's (e.g. x.json and x.json.bak)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.{'?' * 8}.tmp"):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    # mkstemp creates the file 0600; an output gets the mode any new file gets (0666 - umask)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        try:
            yield Path(tmp)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        except OSError as err:
            # A full disk (or a quota, or a file-size limit) while writing: one clear line.
            # The target was not touched (only the temp file, removed below), so the last good
            # output stays as it was and the next run, with space freed, writes it afresh.
            if err.errno not in _NO_SPACE:
                raise
            raise AugflowError(f"could not write: {os.strerror(err.errno)}; the previous file "
                               "is kept; free space and rerun", file=str(path),
                               rule="disk space") from None
        crash_at = os.environ.get(CRASH_ENV)
        if crash_at and path.as_posix().endswith(crash_at):
            os.killpg(os.getpgid(0), signal.SIGKILL)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return round(value, 6) if np.isfinite(value) else None
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def write_json(path: str | Path, obj: Any) -> None:
    # Rounded floats and sorted keys keep reruns byte-identical.
    text = json.dumps(jsonable(obj), indent=2, sort_keys=True) + "\n"
    write_bytes(path, text.encode())


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise AugflowError("file not found", file=str(path), rule="exists")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise AugflowError(f"not valid JSON ({err})", file=str(path), rule="json") from None


def write_parquet(path: str | Path, df: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        df.reset_index(drop=True).to_parquet(tmp, index=False, engine="pyarrow",
                                             compression="snappy")


def read_parquet(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise AugflowError("file not found", file=str(path), rule="exists")
    if path.stat().st_size == 0:
        raise AugflowError("file is empty", file=str(path), rule="non-empty")
    try:
        df = pd.read_parquet(path, engine="pyarrow")
    except Exception as err:  # pyarrow raises several types for corrupt files
        raise AugflowError(f"cannot read as parquet ({type(err).__name__}: {err})",
                           file=str(path), rule="readable") from None
    if len(df) == 0:
        raise AugflowError("table has no rows", file=str(path), rule="non-empty")
    return df
