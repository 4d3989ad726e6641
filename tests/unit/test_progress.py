"""augflow.progress: plain periodic lines off a terminal, nothing in CI or when switched off, a
rich bar on stderr (never stdout) on a terminal, and every item passed through unchanged."""

from __future__ import annotations

import io
import logging

import pytest

from augflow import progress
from augflow.progress import Progress, progress_mode, track


class _Clock:
    """A clock that advances `step` seconds per reading."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture
def plain(monkeypatch):
    """Log mode, whatever the environment this test runs in (a CI job sets CI=true)."""
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("AUGFLOW_PROGRESS", raising=False)
    monkeypatch.setattr(progress, "_stderr_is_tty", lambda: False)


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "augflow.progress"]


def test_off_a_terminal_a_line_every_ten_percent_and_items_unchanged(plain, caplog):
    caplog.set_level(logging.INFO, logger="augflow.progress")
    items = [{"i": i} for i in range(50)]
    out = list(track(items, "work", quiet_s=0, clock=_Clock(0.001)))
    assert out == items and all(a is b for a, b in zip(out, items))
    lines = _lines(caplog)
    assert len(lines) == 10
    assert lines[0].startswith("work: 5/50 (10%)") and lines[-1].startswith("work: 50/50 (100%)")


def test_off_a_terminal_a_line_every_minute_when_the_total_is_unknown(plain, caplog):
    caplog.set_level(logging.INFO, logger="augflow.progress")
    # a generator has no len(): only the time rule applies; 20 s per step -> a line every 3
    out = list(track((i * i for i in range(12)), "stream", quiet_s=0, clock=_Clock(20.0)))
    assert out == [i * i for i in range(12)]
    assert [m.split(",")[0] for m in _lines(caplog)] == ["stream: 3", "stream: 6", "stream: 9",
                                                        "stream: 12"]


def test_short_work_logs_nothing_and_an_early_stop_says_where_it_ended(plain, caplog):
    caplog.set_level(logging.INFO, logger="augflow.progress")
    assert list(track(range(100), "quick", clock=_Clock(0.01))) == list(range(100))
    assert _lines(caplog) == []          # done inside quiet_s (5 s): as quiet as before

    with Progress("epochs", 100, quiet_s=0, clock=_Clock(0.001)) as bar:
        for _ in range(25):               # early stopping at 25 of at most 100
            bar.update(info="val=0.1")
    lines = _lines(caplog)
    assert [m.split(",")[0] for m in lines] == ["epochs: 10/100 (10%)", "epochs: 20/100 (20%)",
                                               "epochs: 25/100 (25%)"]
    assert lines[-1].endswith("val=0.1, finished")


@pytest.mark.parametrize("env", [{"CI": "true"}, {"CI": "1"}, {"AUGFLOW_PROGRESS": "0"}])
def test_in_ci_or_switched_off_nothing_at_all(monkeypatch, caplog, capsys, env):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("AUGFLOW_PROGRESS", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(progress, "_stderr_is_tty", lambda: True)   # even on a terminal
    caplog.set_level(logging.DEBUG)
    assert progress_mode() == "off"
    assert list(track(range(30), "work", quiet_s=0, clock=_Clock(100.0))) == list(range(30))
    assert _lines(caplog) == []
    assert capsys.readouterr() == ("", "")


def test_ci_false_still_shows_progress(monkeypatch):
    monkeypatch.setenv("CI", "false")
    monkeypatch.delenv("AUGFLOW_PROGRESS", raising=False)
    monkeypatch.setattr(progress, "_stderr_is_tty", lambda: False)
    assert progress_mode() == "log"


def test_on_a_terminal_a_bar_on_stderr_never_stdout_and_nesting_works(monkeypatch, capsys):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("AUGFLOW_PROGRESS", raising=False)
    monkeypatch.setattr(progress, "_stderr_is_tty", lambda: True)
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())   # not stderr: left as it is
    root.addHandler(handler)
    try:
        out = []
        for level in track(range(3), "outer"):
            # rich allows one live display: the inner bar joins the outer one
            out.append([i for i in track(range(4), f"inner {level}")])
    finally:
        root.removeHandler(handler)
    assert out == [list(range(4))] * 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "outer" in captured.err
    assert progress._SHARED.bar is None and progress._SHARED.depth == 0   # all closed
    assert handler.stream is not None and not progress._SHARED.swapped
