"""augflow.io: atomic writes that never leave a half file, and careful reads."""

from __future__ import annotations

import errno
import json
import os

import numpy as np
import pandas as pd
import pytest

from augflow.errors import AugflowError
from augflow.io import (atomic_path, jsonable, read_json, read_parquet, write_bytes, write_json,
                        write_parquet)


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_write_bytes_writes_the_file_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "sub" / "out.bin"          # a missing parent folder is created
    write_bytes(target, b"abc")
    assert target.read_bytes() == b"abc"
    assert _leftovers(target.parent) == []
    write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]


def test_atomic_path_yields_a_temp_path_beside_the_target(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        assert tmp.name.startswith(".out.txt.") and tmp.name.endswith(".tmp")
        tmp.write_text("new")
        assert not target.exists()                 # nothing is visible before the block ends
    assert target.read_text() == "new"
    assert _leftovers(tmp_path) == []


def test_a_failing_block_leaves_the_previous_file_intact(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(ValueError, match="boom"):
        with atomic_path(target) as tmp:
            tmp.write_text("half a new fi")
            raise ValueError("boom")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_a_full_disk_is_one_clear_error_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(AugflowError) as info:
        with atomic_path(target) as tmp:
            tmp.write_text("par")
            raise OSError(errno.ENOSPC, "No space left on device")
    err = info.value
    assert err.rule == "disk space" and err.file == str(target)
    assert "previous file is kept" in str(err) and str(target) in str(err)
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_other_os_errors_pass_through_unchanged(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(PermissionError):
        with atomic_path(target):
            raise PermissionError(errno.EACCES, "denied")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_stale_temp_files_of_the_same_target_are_removed(tmp_path):
    stale = tmp_path / ".out.txt.abc12345.tmp"      # as a killed earlier run leaves it (mkstemp: 8 characters)
    other = tmp_path / ".other.txt.abc12345.tmp"    # another target's: not ours to remove
    stale.write_text("x")
    other.write_text("y")
    write_bytes(tmp_path / "out.txt", b"fresh")
    assert not stale.exists() and other.exists()


def test_jsonable_converts_numpy_rounds_floats_and_drops_non_finite():
    out = jsonable({1: np.int64(3), "f": np.float32(0.5), "g": 0.123456789, "t": (1, 2),
                    "b": np.bool_(True), "nan": float("nan"), "inf": np.inf, "s": "x"})
    assert out == {"1": 3, "f": 0.5, "g": 0.123457, "t": [1, 2], "b": True, "nan": None,
                   "inf": None, "s": "x"}
    assert type(out["1"]) is int and type(out["b"]) is bool


def test_write_json_sorts_keys_rounds_floats_and_rewrites_byte_identically(tmp_path):
    target = tmp_path / "m.json"
    obj = {"b": 1.0 / 3.0, "a": {"z": np.float64(2.0000000001), "y": [np.int32(1), 2.5]}}
    write_json(target, obj)
    first = target.read_bytes()
    text = first.decode()
    assert text.endswith("\n")
    assert text.index('"a"') < text.index('"b"') and text.index('"y"') < text.index('"z"')
    assert json.loads(text) == {"a": {"y": [1, 2.5], "z": 2.0}, "b": 0.333333}
    # the same values with another key order and float noise below the rounding: same bytes
    write_json(target, {"a": {"y": [1, 2.5], "z": 2.0}, "b": 0.33333333333})
    assert target.read_bytes() == first


def test_read_json_errors_name_the_file_and_rule(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(AugflowError) as info:
        read_json(missing)
    assert info.value.rule == "exists" and info.value.file == str(missing)
    assert "file not found" in str(info.value)
    broken = tmp_path / "broken.json"
    broken.write_text('{"a": ')
    with pytest.raises(AugflowError) as info:
        read_json(broken)
    assert info.value.rule == "json" and info.value.file == str(broken)
    assert read_json(_written(tmp_path / "ok.json", {"k": [1, 2]})) == {"k": [1, 2]}


def _written(path, obj):
    write_json(path, obj)
    return path


def test_parquet_round_trip_resets_the_index(tmp_path):
    df = pd.DataFrame({"a": [1.5, 2.5, 3.5], "label": [0, 1, 0]}, index=[7, 8, 9])
    target = tmp_path / "t.parquet"
    write_parquet(target, df)
    back = read_parquet(target)
    pd.testing.assert_frame_equal(back, df.reset_index(drop=True))
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("content, rule", [(None, "exists"), (b"", "non-empty"),
                                           (b"not a parquet file", "readable"),
                                           ("no rows", "non-empty")])
def test_read_parquet_errors_name_the_file_and_rule(tmp_path, content, rule):
    target = tmp_path / "t.parquet"
    if content == "no rows":
        write_parquet(target, pd.DataFrame({"a": np.zeros(0)}))
    elif content is not None:
        target.write_bytes(content)
    with pytest.raises(AugflowError) as info:
        read_parquet(target)
    assert info.value.rule == rule and info.value.file == str(target)


def test_outputs_get_the_mode_of_any_new_file_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        write_bytes(tmp_path / "out.bin", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "out.bin").stat().st_mode & 0o777 == 0o644


def test_a_write_removes_its_own_stale_temp_files_but_not_a_siblings(tmp_path):
    mine = tmp_path / ".x.json.abcd1234.tmp"          # left by a killed write of x.json
    sibling = tmp_path / ".x.json.bak.abcd1234.tmp"   # a live write of x.json.bak
    mine.write_bytes(b"old")
    sibling.write_bytes(b"busy")
    write_bytes(tmp_path / "x.json", b"{}")
    assert not mine.exists() and sibling.exists()
