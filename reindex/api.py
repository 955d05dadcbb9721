"""The public Python API: everything the command line does, as functions.

Call these from a Django process (a management command, a Celery task, a deploy
script after ``django.setup()``). Each function resolves its configuration like the
CLI (defaults, ``settings.REINDEX``, the environment, then the keyword overrides
given), checks that the server answers, and returns the result objects the CLI
prints (each with ``as_dict()``, the command's ``--json``)::

    import reindex

    [result] = reindex.rebuild("products", keep=1)
    print(result.indexed, result.new_index)

Targets are aliases (``"products"``), definition classes or instances; none means
every registered definition. Errors are ``reindex.ReindexError`` subclasses, each
with the ``exit_status`` the command would exit with.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from typing import Any

from reindex.config import Config
from reindex.definitions.definition import HOW_TO_TRACK, IndexDefinition, Target, discover
from reindex.errors import ConfigurationError, Interrupted, ReindexError, RunFailed, ServerUnreachable, worst_status
from reindex.interrupts import signals_raise_interrupted
from reindex.operations.alias_status import AliasStatus, alias_status, server_info
from reindex.operations.migration import MigrateResult
from reindex.operations.migration import migrate as migrate_definition
from reindex.operations.planning import RebuildPlan, plan_rebuild
from reindex.operations.rebuilding import RebuildResult
from reindex.operations.rebuilding import rebuild as rebuild_definition
from reindex.operations.retention import PruneResult, RollbackResult
from reindex.operations.retention import prune as prune_alias
from reindex.operations.retention import rollback as rollback_alias
from reindex.operations.sweeping import SweepResult
from reindex.operations.sweeping import sweep as sweep_definition
from reindex.operations.updating import UpdateResult
from reindex.operations.updating import update as update_definition
from reindex.operations.verification import VerifyResult
from reindex.operations.verification import verify as verify_definition
from reindex.pipeline.failure_log import FailureLog
from reindex.pipeline.loading import FailureCallback, ProgressFactory
from reindex.queue.draining import DrainResult
from reindex.queue.draining import drain as drain_queues
from reindex.queue.entries import (
    QueueStatus,
    check_migrated,
    database_errors,
    enqueue_keys,
    queue_database,
    queued_by_hour,
    retry_dead,
)
from reindex.queue.entries import purge as purge_entries
from reindex.queue.entries import queue_status as status_of
from reindex.queue.throughput import DrainPass, read_drain_pass
from reindex.queue.triggers import TriggerStatus
from reindex.queue.triggers import install as install_triggers
from reindex.queue.triggers import remove as remove_triggers
from reindex.queue.triggers import trigger_status as status_of_triggers
from reindex.server.connection import Connection
from reindex.server.drift import IndexDrift
from reindex.server.drift import drift as drift_of
from reindex.server.locking import UnlockResult
from reindex.server.locking import unlock as unlock_alias
from reindex.stream.following import StreamResult, follow
from reindex.stream.slots import SlotStatus
from reindex.stream.slots import check_ready as check_slots_ready
from reindex.stream.slots import drop as drop_slots
from reindex.stream.slots import setup as setup_slots
from reindex.stream.slots import slot_status as status_of_slots

logger = logging.getLogger("reindex.drain")


def load_config(**overrides: Any) -> Config:
    """The configuration every function below resolves: settings, environment, ``overrides``."""
    return Config.load(**overrides)


def definitions(*targets: Target, config: Config | None = None) -> list[IndexDefinition]:
    """The registered definitions (``reindex list``), or those named, in the order given."""
    return discover(config or load_config()).select(targets)


def connect(config: Config | None = None, *, check: bool = False) -> Any:
    """An ``Elasticsearch`` client for ``config``; it connects on its first request (``check=True``: now).

    With ``check=True`` it first asks the server who it is and raises ConnectionFailed if it cannot answer.
    """
    connection = Connection(config or load_config())
    if check:
        connection.check()
    return connection.client()


class _Session:
    """One call's configuration, definitions and checked connection."""

    def __init__(
        self, targets: Sequence[Target], config: Config | None, overrides: dict[str, Any], *, check: bool = True
    ) -> None:
        base = config or load_config()
        self.config = base.replace(**overrides) if overrides else base
        self.definitions = discover(self.config).select(targets)
        self.connection = Connection(self.config)
        if check:
            self.check()
        self.client = self.connection.client()

    def check(self) -> None:
        """Ask the server who it is (ConnectionFailed, ServerUnreachable or ServerError if it cannot answer)."""
        with self.connection.server_errors():
            self.connection.check()


def rebuild_each(
    *targets: Target,
    config: Config | None = None,
    force: bool = False,
    replace_existing_index: bool = False,
    errors_file: str | None = None,
    on_failure: FailureCallback | None = None,
    progress: ProgressFactory | None = None,
    handle_signals: bool = False,
    resume: bool = False,
    **overrides: Any,
) -> Iterator[RebuildResult]:
    """Rebuild each target in turn, yielding each alias's result as soon as it is done.

    Never raises for one alias: a failed or skipped alias's result carries its
    ``exception`` (and ``exit_status``), and the next alias runs. An interrupt
    (SIGTERM/SIGINT with ``handle_signals``) ends the iteration after its result.
    ``resume``: go on with the build a killed run left for an alias, keeping its ranges done.
    Raises ConfigurationError before any alias when the setup is wrong.
    """
    session = _Session(targets, config, overrides)

    def run(definition: IndexDefinition, failed: FailureCallback | None) -> RebuildResult:
        return rebuild_definition(
            definition,
            session.client,
            session.config,
            force=force,
            replace_existing_index=replace_existing_index,
            progress=progress,
            on_failure=failed,
            resume=resume,
        )

    yield from _each(session, session.definitions, run, RebuildResult, errors_file, on_failure, handle_signals)


def _each(
    session: _Session,
    chosen: Sequence[IndexDefinition],
    run: Callable[[IndexDefinition, FailureCallback | None], Any],
    result_type: type[Any],
    errors_file: str | None,
    on_failure: FailureCallback | None,
    handle_signals: bool,
) -> Iterator[Any]:
    """``run`` each definition in turn, turning its error into its result's, until an interrupt."""
    with ExitStack() as stack:
        if handle_signals:
            stack.enter_context(signals_raise_interrupted())
        log = stack.enter_context(FailureLog(errors_file, session.connection.redact)) if errors_file else None
        for definition in chosen:
            callbacks = [c for c in (on_failure, log.for_alias(definition.alias) if log else None) if c is not None]
            result = _run_one(session, definition, run, result_type, callbacks)
            yield result
            if isinstance(result.exception, Interrupted):
                return


def _run_one(
    session: _Session,
    definition: IndexDefinition,
    run: Callable[[IndexDefinition, FailureCallback | None], Any],
    result_type: type[Any],
    callbacks: list[FailureCallback],
) -> Any:
    def on_failure(failure: Any) -> None:
        for callback in callbacks:
            callback(failure)

    try:
        return run(definition, on_failure if callbacks else None)
    except ReindexError as exc:
        result: Any = getattr(exc, "result", None)
        if not isinstance(result, result_type):
            result = result_type(alias=definition.alias, definition=definition.path)
        result.error = session.connection.redact(str(exc))
        result.exception = exc
        if exc.exit_status == 3:
            result.skipped = "locked"
        return result


def _raise_worst(results: list[Any]) -> None:
    """Raise the most severe error of ``results`` (``errors.STATUS_PRECEDENCE``), with ``.results`` on it."""
    failed = [r for r in results if r.exception is not None]
    if not failed:
        return
    worst = worst_status(r.exit_status for r in failed)
    exc = next(r.exception for r in failed if r.exit_status == worst)
    exc.results = results
    raise exc


def rebuild(*targets: Target, raise_on_error: bool = True, **options: Any) -> list[RebuildResult]:
    """Rebuild the aliases of ``targets`` (all when none), one after the other.

    Keyword options: ``force``, ``replace_existing_index``, ``errors_file``,
    ``on_failure``, ``progress``, ``handle_signals``, ``resume``, ``config``, and
    overrides of any setting by its lowercase name (``keep=1``, ``batch_size=500``,
    ``workers=2``, ``executor="celery"``, ``es_url=...``). A failed or locked alias does not stop the others. With
    ``raise_on_error`` (the default), once all ran, the most severe error is raised
    (``errors.STATUS_PRECEDENCE``: configuration 2, failed 1, locked 3), with
    ``.results`` holding every alias's result.
    """
    results = list(rebuild_each(*targets, **options))
    if raise_on_error:
        _raise_worst(results)
    return results


def update_each(
    *targets: Target,
    config: Config | None = None,
    since: str | datetime.datetime | datetime.timedelta | None = None,
    all_rows: bool = False,
    errors_file: str | None = None,
    on_failure: FailureCallback | None = None,
    progress: ProgressFactory | None = None,
    handle_signals: bool = False,
    **overrides: Any,
) -> Iterator[UpdateResult]:
    """Update each target in turn, yielding each alias's result as soon as it is done (like ``rebuild_each``).

    With no target: every definition that tracks its changes (every one with ``all_rows``).
    """
    session = _Session(targets, config, overrides)
    chosen = session.definitions
    if not targets and not all_rows:
        chosen = [d for d in chosen if d.tracks_changes]
        if not chosen:
            untracked = ", ".join(d.alias for d in session.definitions)
            raise ConfigurationError(
                f"no definition tracks its changes ({untracked}): {HOW_TO_TRACK}; "
                "or re-send every row of one with: update NAME --all"
            )

    def run(definition: IndexDefinition, failed: FailureCallback | None) -> UpdateResult:
        return update_definition(
            definition,
            session.client,
            session.config,
            since=since,
            everything=all_rows,
            progress=progress,
            on_failure=failed,
        )

    yield from _each(session, chosen, run, UpdateResult, errors_file, on_failure, handle_signals)


def update(*targets: Target, raise_on_error: bool = True, **options: Any) -> list[UpdateResult]:
    """Re-send the documents of the rows changed since each alias's watermark, into its live index.

    Keyword options: ``since`` (a datetime, a timedelta, or ``"15m"``, ``"2h"``, ``"1d"``,
    an ISO time: instead of the watermark), ``all_rows`` (re-send every row),
    ``errors_file``, ``on_failure``, ``progress``, ``handle_signals``, ``config``, and
    overrides of any setting (``batch_size=500``, ``workers=2``, ``update_overlap=120``).
    Errors as in ``rebuild()``.
    """
    results = list(update_each(*targets, **options))
    if raise_on_error:
        _raise_worst(results)
    return results


def sweep_each(
    *targets: Target,
    config: Config | None = None,
    progress: ProgressFactory | None = None,
    errors_file: str | None = None,
    on_failure: FailureCallback | None = None,
    handle_signals: bool = False,
    **overrides: Any,
) -> Iterator[SweepResult]:
    """Sweep each target in turn, yielding each alias's result as soon as it is done (like ``rebuild_each``)."""
    session = _Session(targets, config, overrides)

    def run(definition: IndexDefinition, failed: FailureCallback | None) -> SweepResult:
        return sweep_definition(definition, session.client, session.config, progress=progress, on_failure=failed)

    yield from _each(session, session.definitions, run, SweepResult, errors_file, on_failure, handle_signals)


def sweep(*targets: Target, raise_on_error: bool = True, **options: Any) -> list[SweepResult]:
    """Delete from each live index the documents whose rows are gone or filtered out (all aliases when none).

    Keyword options: ``progress``, ``errors_file``, ``on_failure``, ``handle_signals``,
    ``config``, and overrides of any setting (``batch_size=5000``: ids per page). Errors
    as in ``rebuild()``.
    """
    results = list(sweep_each(*targets, **options))
    if raise_on_error:
        _raise_worst(results)
    return results


def verify(
    *targets: Target,
    sample: int | None = None,
    full: bool = False,
    progress: ProgressFactory | None = None,
    config: Config | None = None,
    **overrides: Any,
) -> list[VerifyResult]:
    """Compare each live index with its table (all aliases when none): ``sample`` random rows and
    documents (default 1000), or every one with ``full``. ``result.agrees`` says whether they match."""
    session = _Session(targets, config, overrides)
    with session.connection.server_errors():
        return [
            verify_definition(d, session.client, session.config, sample=sample, full=full, progress=progress)
            for d in session.definitions
        ]


def plan(*targets: Target, force: bool = False, config: Config | None = None, **overrides: Any) -> list[RebuildPlan]:
    """What ``rebuild`` would do (``rebuild --dry-run``): new index, rows, mapping diff, deletions, refusals.

    Writes nothing that stays (the server checks the definition on an empty index deleted at once).
    """
    session = _Session(targets, config, overrides)
    with session.connection.server_errors():
        return [plan_rebuild(session.client, d, session.config, force) for d in session.definitions]


def status(*targets: Target, config: Config | None = None, **overrides: Any) -> list[AliasStatus]:
    """What each alias serves: the live index, its count, the indexes kept, the lock, the server."""
    session = _Session(targets, config, overrides)
    with session.connection.server_errors():
        server = server_info(session.client)
        return [alias_status(session.client, d, session.config, server) for d in session.definitions]


def diff(*targets: Target, config: Config | None = None, **overrides: Any) -> list[IndexDrift]:
    """How each live index differs from its definition in code (one report per index behind an alias)."""
    session = _Session(targets, config, overrides)
    with session.connection.server_errors():
        return [report for d in session.definitions for report in drift_of(session.client, d)]


def migrate(
    target: Target, dry_run: bool = False, *, config: Config | None = None, **overrides: Any
) -> list[MigrateResult]:
    """Apply the in-place differences of ``target`` to its live index; NeedsRebuild if any needs a rebuild."""
    session = _Session([target], config, overrides)
    with session.connection.server_errors():
        return migrate_definition(session.client, session.definitions[0], dry_run=dry_run)


def rollback(target: Target, *, config: Config | None = None, **overrides: Any) -> RollbackResult:
    """Move the alias back to the newest previous index kept; NoPreviousIndex if there is none."""
    session = _Session([target], config, overrides)
    with session.connection.server_errors():
        return rollback_alias(session.client, session.definitions[0].alias, session.config)


def prune(target: Target, keep: int | None = None, *, config: Config | None = None, **overrides: Any) -> PruneResult:
    """Delete the alias's previous indexes but the ``keep`` newest (default ``REINDEX["KEEP"]``)."""
    session = _Session([target], config, {**overrides, "keep": keep})
    with session.connection.server_errors():
        return prune_alias(session.client, session.definitions[0].alias, session.config.keep, session.config)


def unlock(target: Target, force: bool = False, *, config: Config | None = None, **overrides: Any) -> UnlockResult:
    """Remove the lock a dead run left on the alias; LockHeld while its holder looks alive, unless ``force``."""
    session = _Session([target], config, overrides)
    alias, ttl, index = session.definitions[0].alias, session.config.lock_ttl, session.config.lock_index
    with session.connection.server_errors():
        return unlock_alias(session.client, alias, ttl, index, force=force)


def enqueue(target: Target, keys: Iterable[Any], *, config: Config | None = None) -> int:
    """Queue the documents of these rows of ``target``'s model (primary keys or instances); return the entries.

    For what sends no signal: ``queryset.update()``, ``bulk_create()``, raw SQL. One
    upsert per 500 keys, in the caller's transaction: a rollback queues nothing::

        with transaction.atomic():
            Product.objects.filter(category=old).update(category=new)
            reindex.enqueue("products", Product.objects.filter(category=new).values_list("pk", flat=True))
    """
    [definition] = discover(config or load_config()).select([target])
    return enqueue_keys((definition.alias, getattr(key, "pk", key)) for key in keys)


def drain(
    *targets: Target,
    loop: bool = False,
    max_seconds: float | None = None,
    handle_signals: bool = False,
    raise_on_error: bool = True,
    config: Config | None = None,
    **overrides: Any,
) -> list[DrainResult]:
    """Send the queued changes of ``targets`` (all aliases when none) in bulk, until nothing is due.

    ``loop``: go on as a worker, polling every ``QUEUE_POLL_INTERVAL`` seconds, until
    ``max_seconds`` pass or (with ``handle_signals``) SIGTERM/SIGINT ends it between
    batches. Overrides of any setting by its lowercase name (``batch_size=500``,
    ``queue_max_attempts=3``). With ``raise_on_error``, a batch the server could not
    take raises RunFailed (its entries stay queued) once every alias was drained.

    A server that cannot be reached is an outage, as a database's is: one pass raises
    RunFailed (the entries stay queued); ``loop`` logs it and drains once it is back.
    """
    session = _Session(targets, config, overrides, check=False)
    try:
        session.check()
    except ServerUnreachable as exc:
        if not loop:
            raise RunFailed(f"{exc}; the queued entries stay queued") from exc
        logger.warning("%s; draining once it answers", exc)
    with ExitStack() as stack:
        if handle_signals:
            stack.enter_context(signals_raise_interrupted())
        with session.connection.server_errors():
            results = drain_queues(
                session.definitions, session.client, session.config, loop=loop, max_seconds=max_seconds
            )
    if raise_on_error:
        _raise_worst(results)
    return results


def queue_status(*targets: Target, config: Config | None = None) -> list[QueueStatus]:
    """Pending, claimed and dead entries and the lag of each alias's queue (all aliases when none)."""
    return [status_of(d.alias) for d in _queued(targets, config)]


def queue_retry(
    *targets: Target, object_ids: Iterable[Any] | None = None, config: Config | None = None
) -> dict[str, int]:
    """Make the dead entries of each alias pending again (after the fix); how many, by alias.

    ``object_ids``: only the entries of these rows (primary keys), as the admin's action on the entries selected.
    """
    return {d.alias: retry_dead(d.alias, object_ids) for d in _queued(targets, config)}


def queue_purge(
    *targets: Target, dead_only: bool = False, object_ids: Iterable[Any] | None = None, config: Config | None = None
) -> dict[str, int]:
    """Delete the queued entries of each alias named (only the dead ones with ``dead_only``); how many, by alias.

    ``object_ids``: only the entries of these rows (primary keys).
    """
    return {d.alias: purge_entries(d.alias, dead_only, object_ids) for d in _queued(targets, config)}


def queue_by_hour(*targets: Target, hours: int = 24, config: Config | None = None) -> dict[str, list[int]]:
    """The entries waiting in each alias's queue by the hour their change was queued, the last ``hours`` hours,
    oldest first (older changes in the first hour); by alias. Reads the queue's table only (one query an alias)."""
    return {d.alias: queued_by_hour(d.alias, hours) for d in _queued(targets, config)}


def last_drains(*targets: Target, config: Config | None = None, **overrides: Any) -> list[DrainPass | None]:
    """The last drain pass that sent anything, per alias (None where none was recorded): entries, seconds, rate."""
    session = _Session(targets, config, overrides)
    with session.connection.server_errors():
        return [read_drain_pass(session.client, d.alias, session.config.lock_index) for d in session.definitions]


def _queued(targets: Sequence[Target], config: Config | None) -> list[IndexDefinition]:
    """The definitions of ``targets``, once the queue's table is known to be there (ConfigurationError if not)."""
    chosen = definitions(*targets, config=config)
    with database_errors("the queue"):
        check_migrated()
    return chosen


def triggers_install(*targets: Target, config: Config | None = None) -> list[TriggerStatus]:
    """Install (or bring up to date) the PostgreSQL triggers that queue every change of these definitions.

    Each definition's own table and every table its ``watch`` lookups go through; the
    triggers left over from an older ``watch`` are dropped. One transaction; safe to run
    again. Raises ConfigurationError on a database that is not PostgreSQL.
    """
    return install_triggers(queued_definitions(targets, config), queue_database())


def triggers_status(*targets: Target, config: Config | None = None) -> list[TriggerStatus]:
    """Per definition, the tables whose triggers are installed, missing, out of date or left over."""
    return status_of_triggers(queued_definitions(targets, config), queue_database())


def stream(
    *targets: Target,
    once: bool = False,
    max_seconds: float | None = None,
    handle_signals: bool = False,
    raise_on_error: bool = True,
    config: Config | None = None,
    **overrides: Any,
) -> list[StreamResult]:
    """Follow the PostgreSQL log of ``targets`` (every definition with ``watch`` when none): docs/stream.md.

    Each alias's slot (``slot_setup``) is read round after round; the documents its
    changes touch are sent in bulk and only then is the slot moved on. ``once``: until
    the slot reaches where the log ended at the start; ``max_seconds``; with
    ``handle_signals`` SIGTERM/SIGINT end it after the round under way. Without
    ``once`` an outage (database, search server) is logged and waited out; with it the
    alias's run fails (RunFailed, nothing confirmed past what was sent). Raises
    ConfigurationError (not PostgreSQL, ``wal_level`` not logical, no slot: see
    ``slot_setup``) and ``Locked`` (exit 3) when another consumer follows a slot.
    """
    session = _Session(targets, config, overrides, check=False)
    chosen = queued_definitions(targets, session.config)
    check_slots_ready(chosen, queue_database())
    try:
        session.check()
    except ServerUnreachable as exc:
        if once:
            raise RunFailed(f"{exc}; the slots stay where they are") from exc
        logger.warning("%s; streaming once it answers", exc)
    with ExitStack() as stack:
        if handle_signals:
            stack.enter_context(signals_raise_interrupted())
        with session.connection.server_errors():
            results = follow(chosen, session.client, session.config, once=once, max_seconds=max_seconds)
    if raise_on_error:
        _raise_worst(results)
    return results


def slot_setup(*targets: Target, config: Config | None = None) -> list[SlotStatus]:
    """Create (or bring up to date) the replication slot and publication of each alias; their status.

    Every definition with ``watch`` when none is named. Raises ConfigurationError when
    the database is not PostgreSQL, ``wal_level`` is not ``logical`` (the message says
    what to set; it needs a restart) or its role may not replicate.
    """
    chosen = queued_definitions(targets, config)
    setup_slots(chosen, queue_database())
    return status_of_slots(chosen, queue_database(), config or load_config())


def slot_status(*targets: Target, config: Config | None = None) -> list[SlotStatus]:
    """Each alias's slot: lag in bytes and seconds, WAL retained, and the thresholds it is past (``problems``)."""
    chosen = queued_definitions(targets, config)
    return status_of_slots(chosen, queue_database(), config or load_config())


def slots_of(*targets: Target, config: Config | None = None) -> dict[str, SlotStatus]:
    """The slots of the aliases that have one, by alias; empty on a database other than PostgreSQL."""
    from django.db import connections

    using = queue_database()
    if connections[using].vendor != "postgresql":
        return {}
    statuses = status_of_slots(definitions(*targets, config=config), using, config or load_config())
    return {status.alias: status for status in statuses if status.exists}


def slot_drop(*targets: Target, config: Config | None = None) -> list[str]:
    """Drop the slots and publications of these aliases (and the REPLICA IDENTITY FULL setup set); the aliases
    that had one. Refuses (ConfigurationError) while a consumer reads a slot."""
    return drop_slots(queued_definitions(targets, config), queue_database())


def queued_definitions(targets: Sequence[Target], config: Config | None) -> list[IndexDefinition]:
    """The definitions whose changes are queued: every one that declares ``watch``, or those named (each must)."""
    chosen = definitions(*targets, config=config)
    if not targets:
        return [d for d in chosen if d.queues_changes]
    for definition in chosen:
        if not definition.queues_changes:
            raise ConfigurationError(
                f"{definition.alias}: declares no watch, so none of its changes are queued; "
                "add watch = {} to its definition to queue its own rows (docs/queue.md)"
            )
    return chosen


def triggers_remove(*targets: Target, config: Config | None = None) -> dict[str, int]:
    """Drop the triggers of these definitions, or every reindex trigger in the database when none is named.

    Returns how many table triggers were dropped, by alias.
    """
    aliases = [d.alias for d in definitions(*targets, config=config)] if targets else None
    return remove_triggers(aliases, queue_database())
