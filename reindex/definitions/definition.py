"""Index definitions and the registry that discovers them.

A definition says what one alias holds: its settings and mappings, the rows to
read, and how a row becomes a document. One document may draw on several models,
so a definition is not tied to one model::

    from reindex import IndexDefinition

    class ProductIndex(IndexDefinition):
        alias = "products"
        mappings = {"properties": {"name": {"type": "text"}}}

        def get_queryset(self):
            return Product.objects.select_related("category")

        def prepare(self, product):
            return {"name": product.name, "category": product.category.name}

Put definitions in an ``indexes`` module of an installed app, or list their dotted
paths in ``settings.REINDEX["INDEXES"]``.
"""

from __future__ import annotations

import copy
import datetime
import functools
import importlib
import inspect
import re
import traceback
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reindex.config import Config
from reindex.database.rows import row_pk
from reindex.errors import ConfigurationError, UnknownIndexError

if TYPE_CHECKING:
    from reindex.definitions.related import Related

_INVALID_NAME_CHARS = re.compile(r'[\\/*?"<>| ,#:A-Z]')


def check_index_name(name: str) -> None:
    """Raise ConfigurationError if ``name`` breaks Elasticsearch's index naming rules."""
    if not name:
        raise ConfigurationError("an index definition has no alias")
    problem = None
    if _INVALID_NAME_CHARS.search(name):
        problem = 'must be lowercase and contain none of \\ / * ? " < > | space , # :'
    elif name[0] in "-_+":
        problem = "must not start with -, _ or +"
    elif name in (".", ".."):
        problem = "must not be . or .."
    elif len(name.encode()) > 200:
        # 255 bytes is the server's limit; the timestamp suffix needs the rest.
        problem = "is longer than 200 bytes"
    if problem:
        raise ConfigurationError(f"invalid alias name {name!r}: {problem}")


def _as_dict(value: Any) -> dict[str, Any]:
    """Accept a plain dict or an ``elasticsearch.dsl`` object that has ``to_dict()``."""
    if value is None:
        return {}
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    if not isinstance(value, dict):
        raise ConfigurationError(f"expected a mapping, got {type(value).__name__}")
    return copy.deepcopy(value)


#: What a definition needs for ``update`` and the rebuild's catch-up to find its changed rows.
HOW_TO_TRACK = "set updated_field (the model's last-updated field) or define changed_since() in its definition"


class IndexDefinition:
    """What one alias holds and how to build its documents from the database.

    Subclass it and set ``alias``; override ``get_queryset()`` and ``prepare()``.
    ``settings`` and ``mappings`` may be plain dicts or ``elasticsearch.dsl``
    objects (``Mapping``, ``Index`` settings dicts).
    """

    alias: str = ""
    settings: Any = None
    mappings: Any = None
    #: Rows read per database query and documents per bulk request for this alias: wins
    #: over ``REINDEX["BATCH_SIZE"]``, loses to ``--batch-size`` / ``batch_size=``.
    batch_size: int | None = None
    #: The model field holding each row's last-updated time (e.g. ``"updated_at"``), which
    #: ``reindex update`` and the rebuild's catch-up look for changes by. None: not tracked
    #: (unless ``changed_since()`` is overridden).
    updated_field: str | None = None
    #: Rows of other tables each document draws on, by the name ``prepare()`` finds them under:
    #: ``{"sellers": Related(links_queryset, by="product_id")}`` (see ``reindex.definitions.related``).
    #: One query per relation and batch, grouped per row: no grouping loop in ``load_batch()``.
    related: Mapping[str, Related] | None = None
    #: Read a ``values()`` queryset on the database cursor (``reindex.database.rows``); False: through the
    #: ORM's iterator, the same rows, slower.
    cursor_reads: bool = True
    #: Saves and deletes of the definition's model, and of these related models, queue the
    #: documents they touch (``reindex.capture``): ``{Seller: "sellers"}`` maps a related
    #: model (or ``"app.Model"``) to the lookup from the definition's model to it, or to a
    #: function of the changed instances returning primary keys. None: nothing is queued.
    watch: Any = None

    # -- what the subclass provides -------------------------------------------------
    def get_queryset(self) -> Any:
        """The rows to index; use select_related/prefetch_related to avoid N+1 queries.

        Any ordering is replaced: rows are read in primary-key order, batch by batch.
        A ``values()`` queryset works too when it includes ``"pk"`` (or the pk column),
        and is read on the database cursor, about twice as fast (see ``reindex.database.rows``).
        """
        raise ConfigurationError(f"{self.name}: define get_queryset()")

    def prepare(self, row: Any) -> dict[str, Any]:
        """Turn one row into the document's body (a dict)."""
        raise ConfigurationError(f"{self.name}: define prepare()")

    def load_batch(self, rows: Sequence[Any]) -> None:
        """Called once per batch before ``prepare()``: fetch what the rows share.

        The default does nothing; prefetch_related on the queryset already runs
        once per batch.
        """

    def get_id(self, row: Any) -> str:
        """The document id; by default the row's primary key, so a hit leads back to it."""
        return str(row_pk(row))

    def changed_since(self, since: datetime.datetime) -> Any:
        """The primary keys of the rows whose *documents* may have changed since ``since``.

        A queryset of primary keys (``values("pk")``, a ``union()`` of several) or any
        iterable of them. The default finds the rows of the queryset's model whose
        ``updated_field`` is at or after ``since``, through the model's base manager and
        not through ``get_queryset()``, so that rows which left the queryset (soft-deleted,
        filtered out) are found too and their documents deleted. Override it when a
        document carries data of other rows: a renamed seller changes every product
        document that names it::

            def changed_since(self, since):
                return Product.objects.filter(updated_at__gte=since).values("pk").union(
                    Product.sellers.through.objects.filter(seller__updated_at__gte=since).values("product_id"),
                )
        """
        if not self.updated_field:
            raise ConfigurationError(f"{self.name}: changes are not tracked: {HOW_TO_TRACK}")
        return self.get_queryset().model._base_manager.filter(**{f"{self.updated_field}__gte": since}).values("pk")

    def pk_from_id(self, doc_id: str) -> Any:
        """The primary key of the row a document id belongs to: the inverse of ``get_id()``.

        The default converts the id with the primary key field (``"42"`` -> ``42``); raises
        ``ValidationError`` for an id no row can have. Override it with ``get_id()``.
        """
        return self.pk_field.to_python(doc_id)

    def id_from_pk(self, pk: Any) -> str:
        """The document id of the row with this primary key (to delete it when the row is gone).

        The default is ``str(pk)``, as ``get_id()`` makes it. Override it with ``get_id()``.
        """
        return str(pk)

    # -- derived ------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The name the CLI uses: the alias."""
        return self.alias

    @property
    def path(self) -> str:
        """Dotted path of the definition class, recorded in the indexes it builds."""
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}"

    def get_settings(self) -> dict[str, Any]:
        """Declared index settings, as a plain dict (without an ``index`` wrapper)."""
        settings = _as_dict(self.settings)
        if set(settings) == {"index"} and isinstance(settings["index"], dict):
            settings = settings["index"]
        return settings

    def get_mappings(self) -> dict[str, Any]:
        """Declared mappings, as a plain dict with ``properties`` at the top."""
        return _as_dict(self.mappings)

    @functools.cached_property
    def pk_field(self) -> Any:
        """The primary key field of the queryset's model (looked up once: ``sweep`` asks per document)."""
        return self.get_queryset().model._meta.pk

    @property
    def queues_changes(self) -> bool:
        """True when saves (and, with triggers, SQL writes) queue this definition's changes: it declares ``watch``."""
        return self.watch is not None

    @property
    def tracks_changes(self) -> bool:
        """True when the definition can find its changed rows: ``updated_field`` or its own ``changed_since()``."""
        return bool(self.updated_field) or type(self).changed_since is not IndexDefinition.changed_since

    def check_ids(self) -> None:
        """Raise ConfigurationError when ``get_id()`` is overridden without its inverses.

        ``update`` deletes a gone row's document by ``id_from_pk()``; ``sweep`` and
        ``verify`` find the row of a document by ``pk_from_id()``.
        """
        cls = type(self)
        if cls.get_id is IndexDefinition.get_id:
            return
        missing = [
            name for name in ("pk_from_id", "id_from_pk") if getattr(cls, name) is getattr(IndexDefinition, name)
        ]
        if missing:
            raise ConfigurationError(
                f"{self.name}: get_id() is overridden, so {' and '.join(f'{m}()' for m in missing)} must be too "
                "(to go from a document to its row and back)"
            )

    def source_models(self) -> list[str]:
        """Labels of the models this definition reads (for ``reindex list``)."""
        models = getattr(self, "models", None)
        if models:
            return [m if isinstance(m, str) else m._meta.label for m in models]
        return [self.get_queryset().model._meta.label]


class Registry:
    """The definitions known to this site, by alias."""

    def __init__(self, definitions: Iterable[IndexDefinition] = ()) -> None:
        self._by_alias: dict[str, IndexDefinition] = {}
        for definition in definitions:
            self.add(definition)

    def add(self, definition: IndexDefinition) -> None:
        check_index_name(definition.alias)
        existing = self._by_alias.get(definition.alias)
        if existing is not None and existing.path != definition.path:
            raise ConfigurationError(
                f"alias {definition.alias!r} is defined twice: {existing.path} and {definition.path}"
            )
        self._by_alias[definition.alias] = definition

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_alias[a] for a in sorted(self._by_alias))

    def __len__(self) -> int:
        return len(self._by_alias)

    @property
    def names(self) -> list[str]:
        return sorted(self._by_alias)

    def get(self, name: str) -> IndexDefinition:
        try:
            return self._by_alias[name]
        except KeyError:
            raise UnknownIndexError.for_names([name], self.names) from None

    def select(self, targets: Sequence[Target] = ()) -> list[IndexDefinition]:
        """The definitions named, in the order given; all of them when none is named.

        A target is an alias, an ``IndexDefinition`` subclass or an instance; a class or
        instance need not be registered.
        """
        if not targets:
            return list(self)
        unknown = [t for t in targets if isinstance(t, str) and t not in self._by_alias]
        if unknown:
            raise UnknownIndexError.for_names(unknown, self.names)
        chosen: dict[str, IndexDefinition] = {}
        for target in targets:
            definition = self._definition(target)
            chosen.setdefault(definition.alias, definition)
        return list(chosen.values())

    def _definition(self, target: Target) -> IndexDefinition:
        if isinstance(target, str):
            return self._by_alias[target]
        if inspect.isclass(target) and issubclass(target, IndexDefinition):
            registered = self._by_alias.get(target.alias)
            if registered is not None and type(registered) is target:
                return registered
            target = target()
        if not isinstance(target, IndexDefinition):
            raise ConfigurationError(f"not an index definition: {target!r:.80}")
        check_index_name(target.alias)
        return target


#: What names a definition: its alias, its class, or an instance.
Target = str | type[IndexDefinition] | IndexDefinition


def _import(module_name: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except SyntaxError as exc:
        raise ConfigurationError(f"cannot import {module_name}: {exc.msg} ({exc.filename}, line {exc.lineno})") from exc


def _definitions_in(module: Any) -> list[IndexDefinition]:
    found = []
    for _, obj in inspect.getmembers(module, inspect.isclass):
        if (
            issubclass(obj, IndexDefinition)
            and obj is not IndexDefinition
            and obj.__module__ == module.__name__
            and obj.alias
        ):
            found.append(obj())
    return found


def _load_path(path: str) -> IndexDefinition:
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ConfigurationError(f"REINDEX['INDEXES']: {path!r} is not a dotted path")
    module = _import(module_name)
    try:
        obj = getattr(module, attr)
    except AttributeError:
        raise ConfigurationError(f"REINDEX['INDEXES']: {module_name} has no {attr}") from None
    if inspect.isclass(obj):
        obj = obj()
    if not isinstance(obj, IndexDefinition):
        raise ConfigurationError(f"REINDEX['INDEXES']: {path} is not an IndexDefinition")
    return obj


def discover(config: Config | None = None) -> Registry:
    """Find the site's definitions: each installed app's ``indexes`` module, then
    ``REINDEX["INDEXES"]``. Set ``REINDEX["AUTODISCOVER"] = False`` to use only the list.
    """
    from django.apps import apps
    from django.utils.module_loading import module_has_submodule

    config = Config.load() if config is None else config
    registry = Registry()
    if config.autodiscover:
        for app in apps.get_app_configs():
            if not module_has_submodule(app.module, "indexes"):
                continue
            try:
                module = _import(f"{app.name}.indexes")
            except ConfigurationError:
                raise
            except Exception as exc:
                line = traceback.format_exception_only(type(exc), exc)[-1].strip()
                raise ConfigurationError(f"cannot import {app.name}.indexes: {line}") from exc
            for definition in _definitions_in(module):
                registry.add(definition)
    for path in config.indexes:
        registry.add(_load_path(path))
    return registry
