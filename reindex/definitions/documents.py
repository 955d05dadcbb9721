"""From rows to bulk actions: reading in keyset batches, building, serialising, batch by batch.

Each step is a generator so memory stays flat however large the table is.
"""

from __future__ import annotations

import datetime
import decimal
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from typing import Any

from reindex.database.rows import cursor_batches, orm_batches, row_pk
from reindex.definitions.definition import IndexDefinition
from reindex.definitions.related import attach_related
from reindex.errors import ConfigurationError
from reindex.results import JsonResult, json_as

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is optional
    orjson = None  # type: ignore[assignment]


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):  # before the import below: orjson calls this for every Decimal
        if not value.is_finite():
            raise TypeError(f"cannot serialise {value!r}")
        return float(value)
    from django.utils.functional import Promise

    if isinstance(value, Promise):  # lazy translation strings
        return str(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    raise TypeError(f"cannot serialise {type(value).__name__} value {value!r:.80}")


def dumps(document: dict[str, Any]) -> bytes:
    """Serialise one document: Decimal, dates, UUID and lazy strings included.

    Raises TypeError or ValueError for values JSON cannot hold.
    """
    if orjson is not None:
        try:
            return orjson.dumps(document, default=_default)
        except orjson.JSONEncodeError as exc:
            raise TypeError(str(exc)) from None
    import json

    return json.dumps(document, default=_default, allow_nan=False, separators=(",", ":")).encode()


def loads(data: bytes) -> Any:
    """Decode what ``dumps()`` made (or any JSON document)."""
    if orjson is not None:
        return orjson.loads(data)
    import json

    return json.loads(data)


def iter_batches(queryset: Any, batch_size: int, after: Any = None, *, cursor: bool = True) -> Iterator[list[Any]]:
    """Lists of at most ``batch_size`` rows in primary-key order, from ``pk > after`` if given.

    Keyset pagination (``pk > last``, never OFFSET; see ``reindex.database.rows``). A plain
    ``values()`` queryset is read on the database cursor unless ``cursor`` is False;
    any other through the ORM.
    """
    if queryset.query.is_sliced:
        raise ValueError("get_queryset() must not be sliced")
    fast = cursor_batches(queryset, batch_size, after) if cursor else None
    return fast if fast is not None else orm_batches(queryset, batch_size, after)


@dataclass
class Failure(JsonResult):
    """A row that did not make it into the index."""

    id: str | None
    reason: str
    error_type: str | None = None
    #: The traceback of an exception raised by the definition's code (shown with -v; not in ``as_dict()``).
    detail: str | None = field(default=None, repr=False, compare=False, metadata=json_as(None))


#: A bulk action: its header, and its serialised document (None for a delete).
Action = tuple[dict[str, Any], bytes | None]


def build_batches(
    definition: IndexDefinition,
    index: str,
    batches: Iterable[Sequence[Any]],
    on_read: Callable[[int], None],
    on_failure: Callable[[Failure], None],
) -> Iterator[list[Action]]:
    """Yield each batch's ``(header, body)`` bulk actions; rows that cannot be built go to ``on_failure``.

    Before ``prepare()``, the definition's ``related`` rows are attached to the batch's
    rows and ``load_batch()`` is called, once per batch.
    """
    for batch in batches:
        if definition.related:
            attach_related(definition.related, batch, cursor=definition.cursor_reads)
        definition.load_batch(batch)
        on_read(len(batch))
        yield build_batch(definition, index, batch, on_failure)


def build_batch(
    definition: IndexDefinition, index: str, batch: Sequence[Any], on_failure: Callable[[Failure], None]
) -> list[Action]:
    """The bulk actions of one batch's rows."""
    actions: list[Action] = []
    get_id, prepare = definition.get_id, definition.prepare
    for row, known_id in zip(batch, default_ids(definition, batch) or repeat(None), strict=False):
        try:
            doc_id = get_id(row) if known_id is None else known_id
            body = prepare(row)
            if not isinstance(body, dict):
                raise TypeError(f"prepare() returned {type(body).__name__}, not a dict")
            data = dumps(body)
        except ConfigurationError:
            raise  # e.g. a values() queryset without "pk": no row can be built
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            on_failure(Failure(_safe_pk(row), reason, "prepare", traceback.format_exc()))
            continue
        actions.append(({"index": {"_index": index, "_id": doc_id}}, data))
    return actions


def default_ids(definition: IndexDefinition, batch: Sequence[Any]) -> list[str] | None:
    """Every row's id at once, as the default ``get_id()`` makes it of a ``values()`` dict with "pk"; else None."""
    overridden = type(definition).get_id is not IndexDefinition.get_id or "get_id" in vars(definition)
    if overridden or not batch or type(batch[0]) is not dict:
        return None
    try:
        return list(map(str, map(itemgetter("pk"), batch)))
    except (KeyError, TypeError):  # rows without "pk" ("id" then, or an error), or not all dicts
        return None


def delete_actions(index: str, doc_ids: Iterable[str]) -> Iterator[Action]:
    """Yield the bulk actions that delete these documents."""
    for doc_id in doc_ids:
        yield {"delete": {"_index": index, "_id": doc_id}}, None


def _safe_pk(row: Any) -> str | None:
    try:
        return str(row_pk(row))
    except Exception:
        return None


def action_lines(action: Action) -> bytes:
    """An action as it goes into an NDJSON bulk body: its header line, and its document's line if any."""
    header, body = action
    line = orjson.dumps(header) if orjson is not None else dumps(header)  # names and ids: nothing for default()
    if body is None:
        return line + b"\n"
    return b"".join((line, b"\n", body, b"\n"))


def item_failure(item: dict[str, Any]) -> Failure:
    """A Failure from one item of a bulk response."""
    op = next(iter(item.values()))
    error = op.get("error") or {}
    if isinstance(error, dict):
        reason = error.get("reason") or str(error)
        caused = error.get("caused_by")
        if isinstance(caused, dict) and caused.get("reason"):
            reason = f"{reason}: {caused['reason']}"
        kind = error.get("type")
    else:
        reason, kind = str(error), None
    return Failure(op.get("_id"), reason or f"status {op.get('status')}", kind)


def created_a_document(item: dict[str, Any]) -> bool:
    """True when a bulk result says an index action created a new document (the common case)."""
    op = item.get("index")
    return op is not None and op.get("result") == "created"


def replaced_a_document(item: dict[str, Any]) -> bool:
    """True when a bulk result says the write replaced an existing document.

    In a fresh index that means an earlier row of this run had the same id.
    """
    return next(iter(item.values())).get("result") == "updated"
