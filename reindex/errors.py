"""Every exception reindex raises on purpose, and the exit status the CLI maps each to.

All derive from ``ReindexError``, whose ``str()`` is a one-line message and whose
``exit_status`` is what the command exits with::

    try:
        reindex.rebuild("products")
    except reindex.Locked:
        pass  # another host is rebuilding it right now
    except reindex.ReindexError as exc:
        log.error("search rebuild failed (%s): %s", exc.exit_status, exc)
"""

from __future__ import annotations

import datetime
import signal
from collections.abc import Iterable, Sequence
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_DIFFERENCES = 1  # reindex diff, like diff(1)
EXIT_CONFIG = 2
EXIT_LOCKED = 3

#: When one command ran for several aliases: the status that wins, most severe first.
#: A failure is never hidden behind a skip.
STATUS_PRECEDENCE = (EXIT_CONFIG, EXIT_FAILED, EXIT_LOCKED, EXIT_OK)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its class name when it has none): what a one-line error says."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def worst_status(statuses: Iterable[int]) -> int:
    """The exit status of a command that ran several times: the most severe by ``STATUS_PRECEDENCE``."""
    found = set(statuses)
    return next((status for status in STATUS_PRECEDENCE if status in found), EXIT_OK)


class ReindexError(Exception):
    """Base of every error reindex raises on purpose; ``str()`` is a one-line message.

    Each can be rebuilt from its message alone (``type(exc)(str(exc))``), as pickle
    and Celery's result backends do; what else a subclass carries is keyword-only.
    """

    exit_status = EXIT_FAILED


# -- exit 2: nothing was tried --------------------------------------------------------


class ConfigurationError(ReindexError):
    """Settings, definitions or arguments are wrong; nothing was changed."""

    exit_status = EXIT_CONFIG


class UnknownIndexError(ConfigurationError):
    """A name matches no registered definition."""

    def __init__(self, message: str, *, names: Sequence[str] = (), known: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.names, self.known = list(names), list(known)

    @classmethod
    def for_names(cls, names: Sequence[str], known: Sequence[str]) -> UnknownIndexError:
        listed = ", ".join(known) if known else "none registered"
        return cls(f"unknown index {', '.join(names)} (known: {listed})", names=names, known=known)


class ConnectionFailed(ConfigurationError):
    """The search server could not be reached at all, or refused the credentials."""


class ServerUnreachable(ConnectionFailed):
    """The search server could not be reached, or answered that it is overloaded (429, 502-504): an outage.

    A configuration error for most commands; ``drain`` treats it as the outage it may be.
    """


class ServerError(ConfigurationError):
    """The search server answered a request with an error the command could not handle."""


# -- exit 1: a run failed and left the alias as it was ----------------------------------


class RunFailed(ReindexError):
    """A run failed before the swap; the alias was left where it was.

    ``result`` holds the counters of the run up to the failure, when there are any.
    """

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class TooManyErrors(RunFailed):
    """More rows failed than ``max_errors`` allows."""


class TooFewDocuments(RunFailed):
    """The new index holds too few documents next to the live one (``min_ratio``)."""


class LockLost(RunFailed):
    """Another run took the lock over while this one was building; this run did not swap."""


class DatabaseUnavailable(RunFailed):
    """The site's database could not be reached (connection refused or lost); nothing queued was lost."""


class Superseded(RunFailed):
    """This attempt at a range is no longer wanted: the build is gone (its coordinator gave
    up) or another attempt claimed the range since. It stopped without writing its result."""


class Interrupted(RunFailed):
    """The run was stopped by SIGTERM or SIGINT; the alias was left as it was."""

    def __init__(self, message: str, result: Any = None, *, signum: int | None = None) -> None:
        super().__init__(message, result)
        self.signum = signum

    @classmethod
    def by(cls, signum: int) -> Interrupted:
        return cls(f"interrupted by {signal.Signals(signum).name}", signum=signum)


def error_named(name: str | None, message: str) -> ReindexError:
    """The error of class ``name`` with ``message``, as another process reported it (RunFailed if unknown)."""
    found = globals().get(name or "")
    if isinstance(found, type) and issubclass(found, ReindexError):
        return found(message)
    return RunFailed(message)


class NoPreviousIndex(ReindexError):
    """There is no kept index to roll back to; nothing was changed."""


class NeedsRebuild(ReindexError):
    """Some differences cannot be applied in place; ``differences`` lists them. Nothing was applied."""

    def __init__(self, message: str, *, alias: str = "", differences: Sequence[Any] = ()) -> None:
        super().__init__(message)
        self.alias, self.differences = alias, list(differences)

    @classmethod
    def for_differences(cls, alias: str, differences: Sequence[Any]) -> NeedsRebuild:
        n = len(differences)
        what = "1 difference needs" if n == 1 else f"{n} differences need"
        return cls(f"{alias}: {what} a rebuild; nothing was applied", alias=alias, differences=differences)


class LockHeld(ReindexError):
    """``unlock`` refused: the holder looks alive (or the lock changed meanwhile); nothing was removed.

    ``result`` is the ``UnlockResult`` with the lock as it was read.
    """

    def __init__(self, message: str, *, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


# -- the search side (``reindex.search``): raised to a view, which shows a page for each --------


class SearchUnavailable(ReindexError):
    """The search server is down, frozen past ``REINDEX["SEARCH_TIMEOUT"]``, or answered 5xx/429:
    show "search is unavailable"; the rest of the site works."""


class BadQuery(ReindexError):
    """The server rejected the query (400, e.g. a bad ``query_string``); the message is its reason."""

    exit_status = EXIT_CONFIG


class InvalidCursor(BadQuery):
    """A cursor string that was not made by this site (tampered, truncated) or for another query."""


class CursorExpired(ReindexError):
    """A cursor's index (or point in time) is gone, e.g. pruned after a rebuild: start from the first page."""


# -- exit 3: skipped ---------------------------------------------------------------------


class Locked(ReindexError):
    """Another run holds the lock of this alias; nothing was changed.

    ``holder`` is the ``LockHolder`` read from the lock.
    """

    exit_status = EXIT_LOCKED

    def __init__(self, message: str, *, alias: str = "", holder: Any = None) -> None:
        super().__init__(message)
        self.alias, self.holder = alias, holder

    @classmethod
    def held_by(cls, alias: str, holder: Any, waited: float = 0) -> Locked:
        since = datetime.datetime.fromtimestamp(holder.started, datetime.timezone.utc).isoformat(timespec="seconds")
        skipped = f"skipped after waiting {waited:g}s for the lock" if waited else "skipped"
        return cls(
            f"{alias}: {skipped}: locked by {holder.host}:{holder.pid} since {since}", alias=alias, holder=holder
        )


class StreamBusy(Locked):
    """Another ``reindex stream`` follows this alias's replication slot; this one read nothing."""
