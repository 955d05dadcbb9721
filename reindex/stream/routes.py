"""From a changed row in the log to the primary keys of the documents it changes.

The routes are the triggers' (``reindex.queue.triggers.planned``): the definition's own
table (the key is the row's primary key), each many-to-many link table on a ``watch``
path (the key is its column pointing at the definition's model), and each table a
``watch`` lookup reaches (a query finds the keys: ``Product.objects.filter(sellers=...)``
as the ORM compiles it). The trigger runs that query on the row before it is deleted;
the log is read after the commit, when the row is gone. So a lookup whose first step is
a reverse foreign key (a category's ``products``) is followed through the changed row's
own column instead (a product's ``category_id``, old and new: a product moved or
deleted changes both categories); its table gets ``REPLICA IDENTITY FULL`` so that a
DELETE carries that column (``reindex.stream.slots``).

    routes = Routes.of(definition, "default")
    keys, truncated = routes.keys(changes)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reindex.queue.triggers import KeySource, planned
from reindex.stream.decoding import TRUNCATE, UNCHANGED, Change


@dataclass
class Routes:
    """The key sources of one alias, by table."""

    alias: str
    own_table: str
    by_table: dict[str, list[KeySource]]
    using: str
    #: The Django field whose ``to_python`` reads a source's value, by (table, column).
    fields: dict[tuple[str, str], Any] = field(default_factory=dict)

    @classmethod
    def of(cls, definition: Any, using: str) -> Routes:
        model = definition.get_queryset().model
        triggers, _ = planned(definition, using)
        by_table = {trigger.table: list(trigger.sources) for trigger in triggers}
        for source in reverse_foreign_keys(model, getattr(definition, "watch", None) or {}):
            by_table[source.table] = [s for s in by_table.get(source.table, []) if s.label != source.label]
            by_table[source.table].append(source)
        routes = cls(definition.alias, model._meta.db_table, by_table, using)
        routes.fields = _fields(by_table)
        return routes

    @property
    def tables(self) -> list[str]:
        return list(self.by_table)

    def keys(self, changes: Iterable[Change]) -> tuple[set[str], list[str]]:
        """The primary keys (as text) of the documents ``changes`` touch, and the tables truncated."""
        keys: set[str] = set()
        truncated: list[str] = []
        looked_up: dict[KeySource, set[Any]] = {}
        for change in changes:
            sources = self.by_table.get(change.table)
            if not sources:
                continue
            if change.kind == TRUNCATE:
                truncated.append(change.table)
                continue
            for source in sources:
                for values in (change.new, change.old):
                    value = (values or {}).get(source.column, UNCHANGED)
                    if value is None or value is UNCHANGED:
                        continue
                    if source.direct:
                        keys.add(value)
                    else:
                        looked_up.setdefault(source, set()).add(self._typed(source, value))
        for source, found in looked_up.items():
            keys.update(self._query(source, sorted(found, key=str)))
        return keys, truncated

    def _typed(self, source: KeySource, value: str) -> Any:
        found = self.fields.get((source.table, source.column))
        return found.to_python(value) if found is not None else value

    def _query(self, source: KeySource, values: Sequence[Any]) -> set[str]:
        """The keys ``source`` reaches from these values, one query (``= ANY``) where the SQL allows."""
        from django.db import connections

        sql, many = source.for_values()
        keys: set[str] = set()
        with connections[self.using].cursor() as cursor:
            for params in [[list(values)]] if many else [[value] for value in values]:
                cursor.execute(sql, params)
                keys.update(str(row[0]) for row in cursor.fetchall() if row[0] is not None)
        return keys


def reverse_foreign_keys(model: Any, watch: dict[Any, Any]) -> list[KeySource]:
    """``watch`` lookups whose first step is a reverse foreign key, as direct sources: the changed row's column."""
    found = []
    for lookup in watch.values():
        if callable(lookup):
            continue
        first = lookup.split("__")[0]
        try:
            relation = model._meta.get_field(first)
        except Exception:  # planned() has reported the lookup already
            continue
        if not (relation.one_to_many and relation.auto_created and not relation.concrete):
            continue
        remote = relation.remote_field  # the ForeignKey on the related model
        table = relation.related_model._meta.db_table
        label = f"via {first!r}"
        found.append(KeySource.of_column(table, remote.column, label))
    return found


def _fields(by_table: dict[str, list[KeySource]]) -> dict[tuple[str, str], Any]:
    """The Django field behind each (table, column) a source reads, for its value's Python type."""
    from django.apps import apps

    wanted = {(source.table, source.column) for sources in by_table.values() for source in sources}
    fields = {}
    for model in apps.get_models(include_auto_created=True):
        for model_field in model._meta.concrete_fields:
            key = (model._meta.db_table, model_field.column)
            if key in wanted:
                fields[key] = model_field
    return fields
