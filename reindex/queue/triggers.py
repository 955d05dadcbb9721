"""PostgreSQL triggers that queue every change, raw SQL and ``queryset.update()`` included.

The signal handlers of ``reindex.capture`` see only what goes through ``save()`` and
``delete()``. A trigger sees every INSERT, UPDATE and DELETE of a table. For each
definition, ``install()`` puts triggers on its own model's table and on every table a
``watch`` lookup goes through (each model on the path and each many-to-many link
table), and each trigger upserts the affected primary keys into ``reindex_queue`` in
the writing statement's own transaction, with the same deduplication as a save::

    install(definitions, "default")       # reindex triggers install
    [status] = trigger_status(definitions)  # reindex triggers status
    status.missing, status.outdated, status.not_covered

Why two triggers per table: a row's relations before and after the change may
differ (a product moved to another category changes the counts of both), so a
BEFORE UPDATE OR DELETE trigger queues what the old row reaches, while the table
still holds it, and an AFTER INSERT OR UPDATE trigger what the new row reaches. The
lookup's SQL is the ORM's own (``Product.objects.filter(sellers=...)`` compiled once,
the seller's key replaced by ``OLD."id"`` or ``NEW."id"``), so it joins exactly as
the signal handlers' query does.

Each trigger function carries a comment with its alias, table and a fingerprint of
its body: ``trigger_status()`` finds the triggers missing, out of date (the
definition's ``watch`` or queryset model changed) or left over, without guessing by
name. ``SET LOCAL reindex.paused = 'on'`` in a transaction makes them queue nothing
(a bulk import followed by a rebuild).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from reindex.errors import ConfigurationError
from reindex.results import JsonResult

#: Marks the changed row's key in compiled SQL, before it becomes ``OLD."col"`` or ``NEW."col"``.
_MARK = "reindex-trigger-row-key-5f0c"
_COMMENT_PREFIX = "reindex trigger "
TRIGGER_SUFFIXES = ("_row", "_old", "_new")
#: Installed trigger functions: name -> what its comment says (alias, table, fingerprint, sources).
Installed = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class KeySource:
    """One way a changed row of ``table`` leads to primary keys of an alias's rows."""

    table: str
    #: A SELECT of one column, the keys to queue, with ``_MARK`` where the changed row's value goes.
    select: str
    #: The column of ``table`` whose value replaces ``_MARK``.
    column: str
    #: What it is, for people: "own rows", "via 'sellers'", "links of 'sellers'".
    label: str

    @property
    def direct(self) -> bool:
        return self.select == f"SELECT '{_MARK}'"

    def for_row(self, row: str) -> str:
        """The SELECT for ``OLD`` or ``NEW``."""
        return self.select.replace(f"'{_MARK}'", f'{row}."{self.column}"')

    @classmethod
    def of_column(cls, table: str, column: str, label: str) -> KeySource:
        """A source whose keys are the values of a column of the changed row itself."""
        return cls(table, f"SELECT '{_MARK}'", column, label)

    def for_values(self) -> tuple[str, bool]:
        """The SELECT with a placeholder for the changed rows' values: ``= ANY(%s)`` of a list where the
        SQL compares the value once (True), else ``%s`` for one value at a time (False)."""
        compared = f"= '{_MARK}'"
        if self.select.count(compared) == 1 and self.select.count(_MARK) == 1:
            return self.select.replace(compared, "= ANY(%s)"), True
        return self.select.replace(f"'{_MARK}'", "%s"), False


@dataclass(frozen=True)
class TableTrigger:
    """The trigger function one alias has on one table: every key source of that table, in one upsert."""

    alias: str
    table: str
    sources: tuple[KeySource, ...]

    @property
    def function(self) -> str:
        digest = hashlib.sha1(f"{self.alias}\0{self.table}".encode()).hexdigest()[:16]
        return f"reindex_queue_{digest}"

    @property
    def direct(self) -> bool:
        """True when every key is a column of the changed row itself: no query, so OLD is still usable AFTER."""
        return all(source.direct for source in self.sources)

    @property
    def triggers(self) -> list[tuple[str, str]]:
        """(name, when and events) of the table's triggers calling the function."""
        if self.direct:
            return [(self.function + "_row", "AFTER INSERT OR UPDATE OR DELETE")]
        return [(self.function + "_old", "BEFORE UPDATE OR DELETE"), (self.function + "_new", "AFTER INSERT OR UPDATE")]

    @property
    def body(self) -> str:
        return function_body(self.alias, self.sources, self.direct)

    @property
    def fingerprint(self) -> str:
        events = ";".join(when for _, when in self.triggers)
        return hashlib.sha1(f"{self.body}\0{events}".encode()).hexdigest()[:16]

    @property
    def labels(self) -> list[str]:
        return [source.label for source in self.sources]


@dataclass
class TriggerStatus(JsonResult):
    """The triggers of one alias: which tables have them, which want them, which are stale or left over."""

    json_placed: ClassVar = {"not_covered": ("complete",)}

    alias: str
    installed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    #: Installed, but the definition now wants another function (its ``watch`` changed).
    outdated: list[str] = field(default_factory=list)
    #: Installed on tables the definition no longer reaches (``install`` drops them).
    extra: list[str] = field(default_factory=list)
    #: ``watch`` entries a trigger cannot follow (functions): still queued by the signal handlers only.
    not_covered: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not (self.missing or self.outdated or self.extra)


def check_database(using: str) -> None:
    """Raise ConfigurationError unless ``using`` is PostgreSQL (triggers are PL/pgSQL)."""
    from django.db import connections

    vendor = connections[using].vendor
    if vendor != "postgresql":
        raise ConfigurationError(f"triggers need PostgreSQL; the queue's database {using!r} is {vendor}")


def planned(definition: Any, using: str) -> tuple[list[TableTrigger], list[str]]:
    """The table triggers ``definition`` wants, and the ``watch`` entries they cannot follow."""
    from django.db import router

    model = definition.get_queryset().model
    if (router.db_for_write(model) or "default") != using:
        raise ConfigurationError(
            f"{definition.alias}: its rows are not in the queue's database {using!r}: a trigger cannot queue them"
        )
    pk = model._meta.pk
    sources = [KeySource(model._meta.db_table, f"SELECT '{_MARK}'", pk.column, "own rows")]
    not_covered = []
    for watched, lookup in dict(getattr(definition, "watch", None) or {}).items():
        if callable(lookup):
            not_covered.append(f"{_model_name(watched)}: a function")
            continue
        sources += path_sources(model, lookup, using)
    by_table: dict[str, list[KeySource]] = {}
    for source in sources:
        if source not in by_table.setdefault(source.table, []):
            by_table[source.table].append(source)
    triggers = [TableTrigger(definition.alias, table, tuple(found)) for table, found in by_table.items()]
    return triggers, not_covered


def _model_name(watched: Any) -> str:
    return watched if isinstance(watched, str) else f"{watched._meta.app_label}.{watched.__name__}"


def path_sources(model: Any, lookup: str, using: str) -> list[KeySource]:
    """Every table on the lookup path from ``model``, each with how its changed rows lead to ``model``'s keys.

    ``"sellers__country"``: the seller table (``filter(sellers=...)``), the country
    table (``filter(sellers__country=...)``) and the link table of ``sellers`` (its
    product column is the key itself).
    """
    sources = []
    current, parts = model, lookup.split("__")
    for depth, name in enumerate(parts):
        try:
            relation = current._meta.get_field(name)
        except Exception as exc:
            raise ConfigurationError(f"watch lookup {lookup!r}: {current.__name__} has no relation {name!r}") from exc
        if not relation.is_relation or relation.related_model is None:
            raise ConfigurationError(f"watch lookup {lookup!r}: {current.__name__}.{name} is not a relation")
        prefix, path = "__".join(parts[:depth]), "__".join(parts[: depth + 1])
        if relation.many_to_many:
            through, column = _link(relation)
            select = _keys_select(model, prefix, using) if prefix else f"SELECT '{_MARK}'"
            sources.append(KeySource(through._meta.db_table, select, column, f"links of {path!r}"))
        current = relation.related_model
        select = _keys_select(model, path, using)
        sources.append(KeySource(current._meta.db_table, select, current._meta.pk.column, f"via {path!r}"))
    return sources


def _link(relation: Any) -> tuple[Any, str]:
    """A many-to-many relation's link model, and its column pointing at the side the path comes from."""
    if relation.auto_created and not relation.concrete:  # the reverse side (ManyToManyRel)
        forward = relation.remote_field
        return forward.remote_field.through, forward.m2m_reverse_name()
    return relation.remote_field.through, relation.m2m_column_name()


def _keys_select(model: Any, path: str, using: str) -> str:
    """``SELECT pk FROM model ... WHERE path = <mark>``: the ORM's SQL, the compared value marked."""
    from django.db import connections

    first, second = _two_values(model, path)
    compiled = [_compiled(model, path, value, using) for value in (first, second)]
    (sql, params), (_, other) = compiled
    varying = [i for i, (a, b) in enumerate(zip(params, other, strict=True)) if a != b]
    if len(varying) != 1:
        raise ConfigurationError(f"watch lookup {path!r}: its SQL could not be turned into a trigger")
    marked = list(params)
    marked[varying[0]] = _MARK
    return str(connections[using].ops.compose_sql(sql, marked))


def _compiled(model: Any, path: str, value: Any, using: str) -> tuple[str, tuple[Any, ...]]:
    keys = model._base_manager.using(using).filter(**{f"{path}__pk": value}).values_list("pk", flat=True).order_by()
    sql, params = keys.query.sql_with_params()
    return sql, tuple(params)


def _two_values(model: Any, path: str) -> tuple[Any, Any]:
    """Two distinct values the primary key at the end of ``path`` accepts (the SQL differs only in them)."""
    target = model
    for name in path.split("__"):
        target = target._meta.get_field(name).related_model
    pk = target._meta.pk
    for pair in ((1, 2), (uuid.UUID(int=1), uuid.UUID(int=2)), ("1", "2")):
        try:
            return tuple(pk.get_prep_value(pk.to_python(v)) for v in pair)  # type: ignore[return-value]
        except Exception:  # not this key type: try the next pair
            continue
    raise ConfigurationError(f"watch lookup {path!r}: no sample value for {target.__name__}'s primary key")


def function_body(alias: str, sources: Sequence[KeySource], direct: bool) -> str:
    """PL/pgSQL that queues the keys the old row reached and the new row reaches.

    ``direct``: keys are columns of the row (an AFTER trigger has both rows). Otherwise
    the BEFORE trigger queries with the old row while the table still holds it, and
    the AFTER trigger with the new one.
    """
    from reindex.queue.entries import QUEUE_COLUMNS, conflict_clause

    def upsert(*rows: str) -> str:
        keys = " UNION ".join(f"({source.for_row(row)})" for row in rows for source in sources)
        return (
            f"INSERT INTO reindex_queue ({', '.join(QUEUE_COLUMNS)}) "
            f"SELECT {_literal(alias)}, changed.k, 'pending', 0, clock_timestamp(), clock_timestamp(), false, '' "
            f"FROM (SELECT DISTINCT found.k::text FROM ({keys}) AS found(k) WHERE found.k IS NOT NULL) AS changed(k) "
            f"{conflict_clause('postgresql')};"
        )

    if direct:
        steps = (
            f"IF TG_OP = 'INSERT' THEN\n      {upsert('NEW')}\n"
            f"    ELSIF TG_OP = 'DELETE' THEN\n      {upsert('OLD')}\n"
            f"    ELSE\n      {upsert('NEW', 'OLD')}\n    END IF;"
        )
    else:
        steps = f"IF TG_WHEN = 'BEFORE' THEN\n      {upsert('OLD')}\n    ELSE\n      {upsert('NEW')}\n    END IF;"
    # A migration that renamed a column or table the SQL names must not make the site's
    # writes fail: the stale trigger warns (the server log) and queues nothing until
    # `triggers install` runs again; `triggers status` calls it outdated.
    stale = (
        f"RAISE WARNING 'reindex: the trigger of % on % is out of date (%): run reindex triggers install', "
        f"{_literal(alias)}, TG_TABLE_NAME, SQLERRM;"
    )
    return (
        "BEGIN\n"
        "  IF coalesce(current_setting('reindex.paused', true), '') <> 'on' THEN\n"
        "    BEGIN\n"
        f"    {steps}\n"
        f"    EXCEPTION WHEN undefined_column OR undefined_table OR undefined_function THEN\n      {stale}\n"
        "    END;\n"
        "  END IF;\n"
        "  IF TG_WHEN = 'AFTER' THEN RETURN NULL; ELSIF TG_OP = 'DELETE' THEN RETURN OLD; END IF;\n"
        "  RETURN NEW;\n"
        "END;"
    )


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def installed(using: str) -> Installed:
    """The reindex trigger functions in the database: function name -> its comment (alias, table, fingerprint)."""
    from django.db import connections

    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT p.proname, obj_description(p.oid, 'pg_proc') FROM pg_proc p "
            "JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = current_schema() AND p.proname LIKE 'reindex\\_queue\\_%%'"
        )
        found = {}
        for name, comment in cursor.fetchall():
            if comment and comment.startswith(_COMMENT_PREFIX):
                found[name] = json.loads(comment[len(_COMMENT_PREFIX) :])
    return found


def _triggered_tables(using: str) -> dict[tuple[str, str], int]:
    """(function name, table) -> how many triggers of that table call the function."""
    from django.db import connections

    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT p.proname, c.relname, count(*) FROM pg_trigger t "
            "JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE p.proname LIKE 'reindex\\_queue\\_%%' AND NOT t.tgisinternal GROUP BY p.proname, c.relname"
        )
        return {(function, table): count for function, table, count in cursor.fetchall()}


def left_over(functions: Installed, alias: str, wanted: list[TableTrigger]) -> Installed:
    """The installed functions of ``alias`` (from ``installed()``) that none of ``wanted`` is: an older ``watch``'s."""
    keep = {trigger.function for trigger in wanted}
    return {name: about for name, about in functions.items() if about.get("alias") == alias and name not in keep}


def trigger_status(definitions: Iterable[Any], using: str) -> list[TriggerStatus]:
    """For each definition, its tables with triggers installed, missing, out of date or left over."""
    check_database(using)
    functions, tables = installed(using), _triggered_tables(using)
    results = []
    for definition in definitions:
        wanted, not_covered = planned(definition, using)
        status = TriggerStatus(definition.alias, not_covered=not_covered)
        for trigger in wanted:
            found = functions.get(trigger.function)
            if found is None or tables.get((trigger.function, trigger.table)) != len(trigger.triggers):
                status.missing.append(trigger.table)
            elif found.get("fingerprint") != trigger.fingerprint:
                status.outdated.append(trigger.table)
            else:
                status.installed.append(trigger.table)
        status.extra = sorted(about["table"] for about in left_over(functions, definition.alias, wanted).values())
        results.append(status)
    return results


def install(definitions: Iterable[Any], using: str) -> list[TriggerStatus]:
    """Create or replace each definition's triggers, drop its left-over ones (one transaction); the status after."""
    from django.db import connections, transaction

    from reindex.queue.entries import check_migrated

    check_database(using)
    check_migrated(using)  # a trigger writing to a missing table would make every write of the site fail
    definitions = list(definitions)
    functions = installed(using)
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        for definition in definitions:
            wanted, _ = planned(definition, using)
            for trigger in wanted:
                for statement in install_statements(trigger):
                    cursor.execute(statement)
            for name in left_over(functions, definition.alias, wanted):
                cursor.execute(f"DROP FUNCTION IF EXISTS {_quoted(name)}() CASCADE")
    return trigger_status(definitions, using)


def install_statements(trigger: TableTrigger) -> list[str]:
    """The SQL that (re)creates one table trigger: its function, its comment, its two triggers."""
    function, table = _quoted(trigger.function), _quoted(trigger.table)
    comment = _COMMENT_PREFIX + json.dumps(
        {"alias": trigger.alias, "table": trigger.table, "fingerprint": trigger.fingerprint, "sources": trigger.labels}
    )
    statements = [
        # The installer's search_path, so that reindex_queue and the tables resolve as they did here.
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT "
        f"AS $reindex$\n{trigger.body}\n$reindex$",
        f"COMMENT ON FUNCTION {function}() IS {_literal(comment)}",
    ]
    statements += [f"DROP TRIGGER IF EXISTS {_quoted(trigger.function + s)} ON {table}" for s in TRIGGER_SUFFIXES]
    statements += [
        f"CREATE TRIGGER {_quoted(name)} {when} ON {table} FOR EACH ROW EXECUTE FUNCTION {function}()"
        for name, when in trigger.triggers
    ]
    return statements


def remove(aliases: Iterable[str] | None, using: str) -> dict[str, int]:
    """Drop the trigger functions (and so their triggers) of these aliases, or every reindex one; how many, by alias."""
    from django.db import connections, transaction

    check_database(using)
    wanted = None if aliases is None else set(aliases)
    removed: dict[str, int] = {alias: 0 for alias in wanted or ()}
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        for name, comment in sorted(installed(using).items()):
            alias = comment.get("alias", "?")
            if wanted is None or alias in wanted:
                cursor.execute(f"DROP FUNCTION IF EXISTS {_quoted(name)}() CASCADE")
                removed[alias] = removed.get(alias, 0) + 1
    return removed
