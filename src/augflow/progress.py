"""Progress on long work (training epochs, generation, filter scoring, the low-data curve).

Three modes, chosen when a piece of work starts:
- bar: stderr is a terminal -> a rich progress bar on stderr;
- log: anything else (a pipe, a file, Prefect, DVC's captured output) -> a plain log line each
  time another `every_pct` percent is done, or after `every_s` seconds without a line (slow
  steps, or an unknown total), and none for work done within `quiet_s`, so short runs and
  tests stay as quiet as before. The defaults (10%, 60 s, 5 s) give a 300-epoch fit about as
  many lines as the old line every 25 epochs did;
- off: the environment variable CI is true, or AUGFLOW_PROGRESS=0 -> nothing at all.

Nothing is ever written to stdout: the CLI's one-line summary there stays the only line."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger("augflow.progress")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):    # a replaced or closed stderr
        return False


def progress_mode() -> str:
    """off, bar or log (see the module's docstring); read from the environment each time, so a
    test or a caller can switch it with an environment variable."""
    if os.environ.get("AUGFLOW_PROGRESS", "").strip().lower() in _FALSE:
        return "off"
    if os.environ.get("CI", "").strip().lower() in _TRUE:
        return "off"
    return "bar" if _stderr_is_tty() else "log"


class _SharedBar:
    """One rich display per process. Rich allows one live display at a time and our progress
    nests (the low-data curve runs stages that train), so nested work adds a task to the display
    already running and removes it when done; the outermost task stays on screen at the end."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.depth = 0
        self.swapped: list[tuple[logging.StreamHandler, Any]] = []

    def add(self, desc: str, total: int | None, done: int) -> Any:
        if self.bar is None:
            self._start()
        self.depth += 1
        return self.bar.add_task(desc, total=total, completed=done, info="")

    def update(self, task: Any, done: int, info: str) -> None:
        self.bar.update(task, completed=done, info=info)

    def remove(self, task: Any) -> None:
        self.depth -= 1
        if self.depth == 0:
            self._stop()
        else:
            self.bar.remove_task(task)

    def _start(self) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        original = sys.stderr
        # stdout is left alone: a print there must not land in the bar's stream
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                            console=Console(stderr=True), redirect_stdout=False)
        self.bar.start()
        # Log handlers keep the stream they were made with, so their lines would tear the bar:
        # while it runs, the ones writing to stderr write through rich's proxy (above the bar).
        if sys.stderr is not original:
            for handler in logging.getLogger().handlers:
                if type(handler) is logging.StreamHandler and handler.stream is original:
                    handler.setStream(sys.stderr)
                    self.swapped.append((handler, original))

    def _stop(self) -> None:
        try:
            self.bar.stop()
        finally:
            for handler, stream in self.swapped:
                handler.setStream(stream)
            self.bar, self.swapped = None, []


_SHARED = _SharedBar()


class Progress:
    """A context for `total` steps of work named `desc`; call update() after each step.

    `info`: a short status shown beside the count (e.g. the losses of the last epoch).
    `done`: steps finished before this run (a resumed fit). `total` may be None (unknown)."""

    def __init__(self, desc: str, total: int | None, *, done: int = 0,
                 logger: logging.Logger | None = None, every_pct: float = 10.0,
                 every_s: float = 60.0, quiet_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.desc, self.total, self.done, self.info = desc, total, done, ""
        self.log = logger or log
        self.every_pct, self.every_s, self.quiet_s, self.clock = every_pct, every_s, quiet_s, clock
        self.mode = "off"
        self._task: Any = None
        self._t0 = self._last_t = 0.0
        self._last_done = done
        self._logged = False

    def __enter__(self) -> Progress:
        self.mode = progress_mode()
        self._t0 = self._last_t = self.clock()
        if self.mode == "bar":
            self._task = _SHARED.add(self.desc, self.total, self.done)
        return self

    def update(self, advance: int = 1, info: str | None = None) -> None:
        self.done += advance
        if info is not None:
            self.info = info
        if self.mode == "bar":
            _SHARED.update(self._task, self.done, self.info)
        elif self.mode == "log" and advance:
            self._maybe_log()

    def _pct(self, done: int) -> float:
        return 100.0 * done / self.total if self.total else 0.0

    def _maybe_log(self) -> None:
        now = self.clock()
        if now - self._t0 < self.quiet_s:
            return
        # a line when the count crosses the next every_pct mark, or every_s after the last one
        crossed = bool(self.total) and (self._pct(self.done) // self.every_pct
                                         > self._pct(self._last_done) // self.every_pct)
        if crossed or now - self._last_t >= self.every_s:
            self._emit(now)

    def _emit(self, now: float, final: bool = False) -> None:
        count = (f"{self.done}/{self.total} ({self._pct(self.done):.0f}%)" if self.total
                 else str(self.done))
        self.log.info("%s: %s, %.0f s%s%s", self.desc, count, now - self._t0,
                      f", {self.info}" if self.info else "", ", finished" if final else "")
        self._last_t, self._last_done, self._logged = now, self.done, True

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.mode == "bar":
            _SHARED.remove(self._task)
        elif self.mode == "log" and exc_type is None and self._logged:
            # work that logged along the way also says where it ended (an early stop, say)
            if self.done != self._last_done:
                self._emit(self.clock(), final=True)


def track(items: Iterable[T], desc: str, total: int | None = None, *,
          logger: logging.Logger | None = None, every_pct: float = 10.0, every_s: float = 60.0,
          quiet_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> Iterator[T]:
    """Yield every item of `items` unchanged, showing progress as each one is finished."""
    if total is None and isinstance(items, Sized):
        total = len(items)
    with Progress(desc, total, logger=logger, every_pct=every_pct, every_s=every_s,
                  quiet_s=quiet_s, clock=clock) as bar:
        for item in items:
            yield item
            bar.update()
