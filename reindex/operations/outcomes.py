"""How one alias's run ends: what its result says, and an unexpected exception turned into ``RunFailed``.

The commands that go from one alias to the next (``rebuild``, ``update``, ``sweep``)
return a result per alias that carries its error; the core raises ``RunFailed``
with that result attached for anything it did not expect::

    result = SweepResult(alias="products", definition="...")
    with failing_into(result):
        ...  # any exception leaves result.error and result.seconds set
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from reindex.errors import EXIT_OK, ReindexError, RunFailed
from reindex.server.connection import describe_failure


@dataclass(kw_only=True)
class RunOutcome:
    """How one alias's run ended, for the results of commands that go on to the next alias."""

    #: "locked" when the run was skipped because another run holds the lock.
    skipped: str | None = None
    error: str | None = None
    #: The exception that ended the run (None when it succeeded); not in ``as_dict()``.
    exception: ReindexError | None = field(default=None, repr=False, compare=False)

    @property
    def exit_status(self) -> int:
        """The exit status this alias's run alone would have."""
        return EXIT_OK if self.exception is None else self.exception.exit_status


@contextmanager
def failing_into(result: Any) -> Iterator[None]:
    """Time the block into ``result.seconds``; a RunFailed, or any unexpected exception turned
    into one, leaves its message in ``result.error`` and carries ``result``."""
    started = time.monotonic()
    try:
        yield
    except RunFailed as exc:
        result.error = str(exc)
        exc.result = result
        raise
    except ReindexError:
        raise
    except Exception as exc:
        result.error = describe_failure(exc)
        raise RunFailed(f"{result.alias}: {result.error}", result) from exc
    finally:
        result.seconds = time.monotonic() - started
