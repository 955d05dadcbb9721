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

from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from typing import Any

from reindex.alias_status import AliasStatus, alias_status, server_info
from reindex.config import Config
from reindex.connection import Connection
from reindex.definitions import IndexDefinition, Target, discover
from reindex.drift import IndexDrift
from reindex.drift import drift as drift_of
from reindex.errors import Interrupted, ReindexError, worst_status
from reindex.failure_log import FailureLog
from reindex.interrupts import signals_raise_interrupted
from reindex.loading import FailureCallback, ProgressFactory
from reindex.locking import UnlockResult
from reindex.locking import unlock as unlock_alias
from reindex.migration import MigrateResult
from reindex.migration import migrate as migrate_definition
from reindex.planning import RebuildPlan, plan_rebuild
from reindex.rebuilding import RebuildResult
from reindex.rebuilding import rebuild as rebuild_definition
from reindex.retention import PruneResult, RollbackResult
from reindex.retention import prune as prune_alias
from reindex.retention import rollback as rollback_alias


def load_config(**overrides: Any) -> Config:
    """The configuration every function below resolves: settings, environment, ``overrides``."""
    return Config.load(**overrides)


def definitions(*targets: Target, config: Config | None = None) -> list[IndexDefinition]:
    """The registered definitions (``reindex list``), or those named, in the order given."""
    return discover(config or load_config()).select(targets)


def connect(config: Config | None = None) -> Any:
    """An ``Elasticsearch`` client for ``config``, after checking the server answers (ConnectionFailed if not)."""
    connection = Connection(config or load_config())
    connection.check()
    return connection.client()


class _Session:
    """One call's configuration, definitions and checked connection."""

    def __init__(self, targets: Sequence[Target], config: Config | None, overrides: dict[str, Any]) -> None:
        base = config or load_config()
        self.config = base.replace(**overrides) if overrides else base
        self.definitions = discover(self.config).select(targets)
        self.connection = Connection(self.config)
        with self.connection.server_errors():
            self.connection.check()
        self.client = self.connection.client()


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
    with ExitStack() as stack:
        if handle_signals:
            stack.enter_context(signals_raise_interrupted())
        log = stack.enter_context(FailureLog(errors_file, session.connection.redact)) if errors_file else None
        for definition in session.definitions:
            callbacks = [c for c in (on_failure, log.for_alias(definition.alias) if log else None) if c is not None]
            result = _rebuild_one(session, definition, force, replace_existing_index, progress, callbacks, resume)
            yield result
            if isinstance(result.exception, Interrupted):
                return


def _rebuild_one(
    session: _Session,
    definition: IndexDefinition,
    force: bool,
    replace_existing_index: bool,
    progress: ProgressFactory | None,
    callbacks: list[FailureCallback],
    resume: bool = False,
) -> RebuildResult:
    def on_failure(failure: Any) -> None:
        for callback in callbacks:
            callback(failure)

    try:
        return rebuild_definition(
            definition,
            session.client,
            session.config,
            force=force,
            replace_existing_index=replace_existing_index,
            progress=progress,
            on_failure=on_failure if callbacks else None,
            resume=resume,
        )
    except ReindexError as exc:
        result = getattr(exc, "result", None)
        if not isinstance(result, RebuildResult):
            result = RebuildResult(alias=definition.alias, definition=definition.path)
        result.error = session.connection.redact(str(exc))
        result.exception = exc
        if exc.exit_status == 3:
            result.skipped = "locked"
        return result


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
    failed = [r for r in results if r.exception is not None]
    if raise_on_error and failed:
        worst = worst_status(r.exit_status for r in failed)
        exc = next(r.exception for r in failed if r.exit_status == worst)
        assert exc is not None
        exc.results = results  # type: ignore[attr-defined]
        raise exc
    return results


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
