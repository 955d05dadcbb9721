"""SIGTERM and SIGINT as an exception that unwinds through a run's clean-up.

``timeout`` from cron, a deploy or Ctrl-C sends a signal; inside
``signals_raise_interrupted()`` it becomes ``Interrupted``, so the rebuild deletes its
partial index, releases its lock and leaves the alias as it was. ``deferred()`` holds a
signal back while a step must not be cut in half (the alias swap and its bookkeeping).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from reindex.errors import RunFailed

HANDLED = (signal.SIGTERM, signal.SIGINT)


class Interrupted(RunFailed):
    """The run was stopped by a signal; the alias was left as it was."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


class _State:
    installed = False
    deferring = 0
    pending: int | None = None
    raised = False


_state = _State()


def _handle(signum: int, frame: Any) -> None:
    if _state.raised:  # already unwinding: let the clean-up finish
        return
    if _state.deferring:
        _state.pending = signum
        return
    _state.raised = True
    raise Interrupted(signum)


@contextmanager
def signals_raise_interrupted() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into ``Interrupted`` inside the block (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _handle) for sig in HANDLED}
    _state.installed, _state.pending, _state.raised = True, None, False
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _state.installed = False


@contextmanager
def deferred() -> Iterator[None]:
    """Hold signals back inside the block and raise ``Interrupted`` after it, if one came."""
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1
    if not _state.deferring and _state.pending is not None and not _state.raised:
        signum, _state.pending = _state.pending, None
        _state.raised = True
        raise Interrupted(signum)
