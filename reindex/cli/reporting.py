"""Text for people: the lines the command line prints for each result the core returns.

Every function takes a result object and returns lines (or one line); none prints.
Lines may carry click styles, which ``click.echo`` drops off a terminal. ``--json``
output is the results' ``as_dict()`` (``reindex.results``), through ``as_json()``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import click

from reindex.definitions.definition import IndexDefinition
from reindex.definitions.mappings import ADDED, REMOVED, Difference
from reindex.operations.alias_status import AliasStatus
from reindex.operations.migration import MigrateResult
from reindex.operations.planning import RebuildPlan
from reindex.operations.rebuilding import RebuildResult
from reindex.operations.retention import PruneResult, RollbackResult
from reindex.operations.sweeping import SweepResult
from reindex.operations.updating import UpdateResult
from reindex.operations.verification import VerifyResult
from reindex.queue.draining import DrainResult
from reindex.queue.entries import QueueStatus
from reindex.queue.triggers import TriggerStatus
from reindex.results import to_json
from reindex.server.drift import IndexDrift
from reindex.server.locking import LockState, UnlockResult
from reindex.stream.following import StreamResult
from reindex.stream.slots import SlotStatus

#: Failed rows listed under a failed or partly failed rebuild (all of them with -v).
FAILURES_SHOWN = 10


def as_json(results: Any) -> str:
    """``results`` (a result, or a list or dict of them, or plain data) as the indented JSON that ``--json`` prints."""
    return json.dumps(to_json(results), indent=2)


# -- list ------------------------------------------------------------------------------


def definition_rows(definitions: Iterable[IndexDefinition]) -> list[dict[str, Any]]:
    """The data of ``reindex list``: alias, definition, models read."""
    return [{"alias": d.alias, "definition": d.path, "models": d.source_models()} for d in definitions]


def format_definition_row(row: dict[str, Any]) -> str:
    return f"{row['alias']}\t{', '.join(row['models'])}\t{row['definition']}"


# -- rebuild ---------------------------------------------------------------------------


def format_rebuild(result: RebuildResult) -> str:
    """One line for a finished rebuild."""
    line = (
        f"{result.alias}: {result.indexed} indexed, {result.failed} failed of {result.rows_read} rows "
        f"in {result.seconds:.1f}s; alias -> {result.new_index}"
    )
    if result.old_indexes:
        line += f" (was {', '.join(result.old_indexes)})"
    if result.dropped:
        line += f"; dropped {', '.join(result.dropped)}"
    if result.kept:
        line += f"; kept {', '.join(result.kept)}"
    if result.replaced_index:
        line += f"; replaced the concrete index {result.replaced_index}"
    if result.duplicates:
        line += f"; {result.duplicates} duplicate document ids (a later row replaced an earlier one)"
    return line


_TAKEOVER_REASONS = {
    "process_gone": " (its process is gone)",
    "heartbeat_expired": " (no heartbeat within the lock's TTL)",
}


def rebuild_notices(result: RebuildResult) -> list[str]:
    """Diagnostics worth a line on stderr even when the run succeeds."""
    lines = []
    if result.lock_taken_over_from:
        why = _TAKEOVER_REASONS.get(result.lock_taken_over_because or "", "")
        lines.append(f"{result.alias}: took over a stale lock held by {result.lock_taken_over_from}{why}")
    if result.abandoned_dropped:
        lines.append(f"{result.alias}: deleted abandoned partial indexes {', '.join(result.abandoned_dropped)}")
    return lines


def format_failures(result: Any, all_kept: bool = False, tracebacks: bool = False) -> list[str]:
    """The failed rows of a run: the first ``FAILURES_SHOWN`` (all those kept with ``all_kept``).

    ``tracebacks``: below a row whose ``prepare()`` raised, the traceback.
    """
    shown = result.failures if all_kept else result.failures[:FAILURES_SHOWN]
    lines = []
    for failure in shown:
        lines.append(f"{result.alias}: row {failure.id} failed: {failure.reason}")
        if tracebacks and failure.detail:
            lines += [f"  {line}" for line in failure.detail.rstrip().splitlines()]
    if result.failed > len(shown):
        lines.append(f"{result.alias}: ... and {result.failed - len(shown)} more failed rows (all in --errors-file)")
    return lines


def alias_left(result: RebuildResult) -> str:
    """Where a failed run left the alias."""
    live = [result.new_index] if result.swapped else result.old_indexes
    return f"alias left on {', '.join(str(n) for n in live) or 'nothing'}"


def format_plan(plan: RebuildPlan) -> list[str]:
    """The lines of ``rebuild --dry-run`` for one alias."""
    live = f"{', '.join(plan.live)} ({plan.live_count} documents)" if plan.live else "nothing (not built)"
    lines = [f"{plan.alias}: would create {plan.new_index} from {plan.rows} rows", f"  alias now on: {live}"]
    lines += [f"  {line}" for report in plan.drift for line in format_drift(report)]
    deleted = [f"{n} (abandoned build)" if n in plan.abandoned else n for n in plan.delete]
    lines.append(f"  would delete: {', '.join(deleted) or 'nothing'}")
    if plan.keep:
        lines.append(f"  would keep: {', '.join(plan.keep)}")
    if plan.refusal:
        lines.append(f"  would fail: {plan.refusal}")
    return lines


# -- update ------------------------------------------------------------------------------

_SINCE_FROM = {"watermark": "the watermark less the overlap", "since": "--since"}


def format_update(result: UpdateResult) -> str:
    """One line for a finished update."""
    if result.since_from == "all":
        what = f"every row ({result.changed})"
    else:
        what = f"{result.changed} changed since {_when(result.since)} ({_SINCE_FROM.get(str(result.since_from), '')})"
    line = (
        f"{result.alias}: {what}: {result.indexed} indexed, {result.deleted} deleted, {result.failed} failed "
        f"in {result.seconds:.1f}s into {result.index}"
    )
    moved = "" if result.watermark_moved else " (left where it was: --since starts after it)"
    return f"{line}; watermark {_when(result.watermark)}{moved}"


def update_left(result: UpdateResult) -> str:
    """What a failed update left."""
    return f"{result.alias}: the watermark was not moved; the next update reads these rows again"


def _when(value: Any) -> str:
    return "?" if value is None else value.isoformat(timespec="milliseconds")


# -- the change queue ------------------------------------------------------------------------


def counted(n: int, one: str, many: str) -> str:
    """``n`` with the noun that agrees with it: 1 batch, 2 batches."""
    return f"{n} {one if n == 1 else many}"


def format_drain(result: DrainResult) -> str:
    """One line for an alias's drain."""
    line = (
        f"{result.alias}: {counted(result.claimed, 'entry', 'entries')} in "
        f"{counted(result.batches, 'batch', 'batches')}: {result.indexed} indexed, "
        f"{result.deleted} deleted, {result.retried} to retry, {result.dead} dead in {result.seconds:.1f}s"
    )
    return with_counts(
        line,
        (result.replaying, "kept until the rebuild under way swaps"),
        (result.released, "put back (the server could not take them)"),
        (result.lost_claims, "queued again (lease expired)"),
    )


def with_counts(line: str, *counts: tuple[int, str]) -> str:
    """``line``, then each ``(count, what)`` whose count is not nought, after a semicolon."""
    extras = [f"{count} {what}" for count, what in counts if count]
    return f"{line}; {', '.join(extras)}" if extras else line


def drain_left(result: DrainResult) -> str:
    """What a failed drain left."""
    return "the entries not sent stay queued"


def format_stream(result: StreamResult) -> str:
    """One line for an alias's stream."""
    line = (
        f"{result.alias}: {counted(result.transactions, 'transaction', 'transactions')}, "
        f"{counted(result.documents, 'document', 'documents')}: {result.indexed} indexed, "
        f"{result.deleted} deleted, {result.failed} failed ({result.dead} dead) in {result.seconds:.1f}s"
    )
    return with_counts(
        line,
        (result.replaying, "kept until the rebuild under way swaps"),
        (result.deferred, "queued (the server could not take them)"),
        (len(result.truncated), "truncated table(s) " + ", ".join(result.truncated)),
    )


def stream_left(result: StreamResult) -> str:
    """What a failed stream left."""
    return "the slot stays at the last change sent"


def format_slot_status(status: SlotStatus) -> str:
    """One line for an alias's slot."""
    return f"{status.alias}: {describe_slot(status)}"


def describe_slot(status: SlotStatus) -> str:
    """A slot's state, as ``slot status`` and ``status`` show it after the alias."""
    if not status.exists:
        return "no slot"
    reading = "being read" if status.active else "not being read"
    lag = "lag unknown (being read)" if status.lag_seconds is None else f"oldest change {status.lag_seconds:.1f}s ago"
    retained = (status.retained_bytes or 0) / 1024 / 1024
    return f"slot {status.slot}, {reading}; {lag}; {retained:.1f} MB of WAL kept"


def format_queue_status(status: QueueStatus) -> str:
    """One line for an alias's queue."""
    lag = "nothing waiting" if status.lag is None else f"oldest change {status.lag:.1f}s ago"
    return f"{status.alias}: {status.pending} pending, {status.claimed} being drained, {status.dead} dead; {lag}"


def format_trigger_status(status: TriggerStatus) -> str:
    """One line for an alias's triggers: the tables with them, then what is wrong."""
    parts = [f"triggers on {', '.join(status.installed)}" if status.installed else "no triggers"]
    wrong = (("missing on", status.missing), ("outdated on", status.outdated), ("left over on", status.extra))
    for what, tables in wrong:
        if tables:
            parts.append(f"{what} {', '.join(tables)}")
    if status.not_covered:
        parts.append(f"not followed by a trigger (queued by saves only): {', '.join(status.not_covered)}")
    return f"{status.alias}: {'; '.join(parts)}"


# -- sweep and verify ------------------------------------------------------------------------


def format_sweep(result: SweepResult) -> str:
    """One line for a finished sweep."""
    return (
        f"{result.alias}: {result.documents} documents checked in {result.index}: {result.deleted} deleted "
        f"(rows gone or filtered out), {result.failed} failed in {result.seconds:.1f}s"
    )


def sweep_left(result: SweepResult) -> str:
    """What a failed sweep left."""
    return f"{result.alias}: {result.deleted} documents deleted before the failure; run sweep again"


def format_verify(result: VerifyResult) -> str:
    """One line: agrees or drift, the counts, and the first ids of each kind of drift."""
    verdict = "agrees" if result.agrees else "drift"
    line = (
        f"{result.alias}: {verdict} ({result.mode}, {result.checked_rows} rows and {result.checked_documents} "
        f"documents checked): {result.rows} rows, {result.documents} documents in {result.index}"
    )
    kinds = [("missing", result.missing_ids), ("orphans", result.orphan_ids), ("stale", result.stale_ids)]
    if result.failed:
        kinds.append(("failed to build", result.failed_ids))
    parts = []
    for kind, ids in kinds:
        count = getattr(result, kind.split()[0])
        shown = f" ({', '.join(ids)}{', ...' if count > len(ids) else ''})" if count else ""
        parts.append(f"{count} {kind}{shown}")
    return f"{line}; {', '.join(parts)}"


# -- status ------------------------------------------------------------------------------

_CODE_MATCH = {
    True: "; built from the definition in code",
    False: "; built from a different definition (see reindex diff)",
    None: "; no fingerprint of its definition recorded",
}


def format_server(st: AliasStatus) -> str:
    """``server: opensearch 2.11.0 at http://search:9200``."""
    server = st.server
    if server is None:
        return "server: unknown"
    return f"server: {server.distribution} {server.version} at {server.url}"


def format_status(st: AliasStatus) -> list[str]:
    """The lines of ``reindex status`` for one alias."""
    if st.concrete:
        return [f"{st.alias}: a concrete index (not an alias) with {st.count} documents"]
    if not st.built:
        lines = [f"{st.alias}: not built"]
    else:
        lines = [f"{st.alias}: live {', '.join(st.live)} ({st.count} documents){_CODE_MATCH[st.matches_code]}"]
    for info in st.indexes:
        marks = "live" if info.live else "building" if info.building else "kept"
        line = f"  {info.name}\t{marks}\tcreated {info.created or '?'}\t{info.count} documents"
        if info.name in st.ranges:
            line += f"\t{format_ranges(st.ranges[info.name])}"
        lines.append(line)
    if st.watermark is not None:
        mark = st.watermark
        lines.append(f"  fresh up to {_when(mark.time)} ({mark.command} into {mark.index}, less the overlap)")
    if st.lock is not None:
        lines.append(f"  locked by {format_lock(st.lock)}")
    return lines


def format_lock(lock: LockState) -> str:
    """``web2:4242 since ... (heartbeat 12s ago; stale in 288s)``: who holds a lock, and until when."""
    holder = lock.holder
    if lock.holder_gone:
        staleness = "holder's process is gone: stale"
    elif lock.stale:
        staleness = "stale"
    else:
        staleness = f"stale in {lock.stale_in:.0f}s"
    return (
        f"{holder.host}:{holder.pid} since {holder.as_source()['started_at']}"
        f" (heartbeat {lock.heartbeat_age:.0f}s ago; {staleness})"
    )


def format_unlock(result: UnlockResult) -> str:
    """``products: removed the lock held by ...`` or ``products: not locked``."""
    if result.lock is None:
        return f"{result.alias}: not locked"
    forced = " (forced)" if result.forced else ""
    return f"{result.alias}: removed the lock held by {format_lock(result.lock)}{forced}"


def format_ranges(summary: dict[str, int]) -> str:
    """``ranges: 3 of 8 done, 2 running, 3 pending (1,234 rows read)``, with failed ones when any."""
    parts = [f"{summary['done']} of {summary['ranges']} done", f"{summary['running']} running"]
    parts.append(f"{summary['pending']} pending")
    if summary["failed"]:
        parts.append(f"{summary['failed']} failed")
    return f"ranges: {', '.join(parts)} ({summary['rows_read']:,} rows read)"


# -- diff and migrate ----------------------------------------------------------------------

_MARKS = {ADDED: ("+", "green"), REMOVED: ("-", "red")}


def describe(difference: Difference) -> str:
    """One line for one difference, without colour."""
    d = difference
    if d.kind == ADDED:
        text = f"{d.where}: added {_show(d.declared)}"
    elif d.kind == REMOVED:
        origin = "not declared, from dynamic mapping" if d.dynamic else "removed from the definition"
        text = f"{d.where}: {origin} (live {_show(d.live)})"
    else:
        text = f"{d.where}: {_show(d.live)} -> {_show(d.declared)}"
    return f"{text}  [{d.consequence}]"


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def drift_summary(report: IndexDrift) -> str:
    """``products: 3 differences (1 in-place, 2 need rebuild)``."""
    if not report.built:
        return f"{report.alias}: not built"
    n = len(report.differences)
    if not n:
        return f"{report.alias}: no differences ({report.index})"
    split = f"{len(report.in_place)} in-place, {len(report.needs_rebuild)} need rebuild"
    return f"{report.alias}: {counted(n, 'difference', 'differences')} ({split})"


def format_drift(report: IndexDrift) -> list[str]:
    """The lines for one report: a header, one marked line per difference, the summary."""
    if not report.differences:
        return [drift_summary(report)]
    lines = [click.style(f"{report.alias} ({report.index}):", bold=True)]
    for d in report.differences:
        mark, colour = _MARKS.get(d.kind, ("~", "yellow"))
        lines.append(click.style(f"  {mark} {describe(d)}", fg=colour))
    lines.append(drift_summary(report))
    return lines


def format_migrate(result: MigrateResult) -> list[str]:
    """``products: applied 2 in-place changes to products-2026...`` and one line per change."""
    n = len(result.applied)
    if not n:
        return [f"{result.alias}: nothing to apply to {result.index}"]
    verb = "would apply" if result.dry_run else "applied"
    lines = [f"{result.alias}: {verb} {n} in-place change{'s' if n != 1 else ''} to {result.index}"]
    lines += [f"  {describe(d)}" for d in result.applied]
    if result.documents_to_fill:
        lines.append(
            f"{result.alias}: the {result.documents_to_fill} documents already indexed predate the change "
            f"(a new field is missing from them): send them again with `reindex update {result.alias} --all` "
            f"(in place) or `reindex rebuild {result.alias}`"
        )
    return lines


# -- rollback and prune -------------------------------------------------------------------


def format_rollback(result: RollbackResult) -> str:
    was = ", ".join(result.from_indexes)
    return f"{result.alias}: alias -> {result.to_index} ({result.count} documents; was {was})"


def format_prune(result: PruneResult) -> str:
    dropped, kept = ", ".join(result.dropped) or "nothing", ", ".join(result.kept) or "nothing"
    return f"{result.alias}: dropped {dropped}; kept {kept}"
