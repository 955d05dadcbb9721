"""Capture: saves, deletes and many-to-many changes queue the documents they touch.

A definition opts in with ``watch``: the related models its documents carry, each
with the lookup from the definition's model to it (or a function of the changed
instances returning primary keys). Its own model is always watched::

    class ProductIndex(IndexDefinition):
        alias = "products"
        watch = {Seller: "sellers", Category: "category"}

Then saving a product queues that product; renaming a seller queues every product
that carries it (one query, ``Product.objects.filter(sellers__in=[seller])``);
``product.sellers.add(seller)`` queues the product (both sides of a many-to-many
change are looked at); deleting a seller queues its products before the rows that
link them go. The handlers only write ``reindex_queue`` rows, in the save's own
transaction: no request to the search server, no failed save when it is down.
``queryset.update()``, ``bulk_create()`` and raw SQL send no signal: call
``reindex.enqueue(alias, pks)`` after them.

``REINDEX["QUEUE_CAPTURE"] = False`` turns the handlers into no-ops; ``paused()``
suspends them in a block (a data migration that ends with a rebuild)::

    with reindex.capture.paused():
        Product.objects.bulk_create(...)
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("reindex.capture")
_paused: contextvars.ContextVar[bool] = contextvars.ContextVar("reindex_capture_paused", default=False)
_lock = threading.Lock()
_routes: dict[type, list[Route]] | None = None


@dataclass(frozen=True)
class Route:
    """How a change of a row of one model reaches the documents of one alias."""

    alias: str
    #: The definition's model (the one whose primary keys are queued).
    model: Any
    #: None: the row is the document's own; a lookup path from ``model``; or a function.
    lookup: str | Callable[[list[Any]], Iterable[Any]] | None

    def keys(self, instances: list[Any], using: str) -> list[Any]:
        """The primary keys of the definition's rows whose documents these instances appear in."""
        if self.lookup is None:
            return [instance.pk for instance in instances]
        if callable(self.lookup):
            return list(self.lookup(instances))
        pks = [instance.pk for instance in instances]
        related = self.model._base_manager.using(using).filter(**{f"{self.lookup}__in": pks})
        return list(related.values_list("pk", flat=True).distinct())


def install() -> None:
    """Connect the handlers (``AppConfig.ready``); they read the configuration at the first change."""
    from django.core.signals import setting_changed
    from django.db.models import signals

    signals.post_save.connect(_saved, dispatch_uid="reindex.capture.saved")
    signals.pre_delete.connect(_deleting, dispatch_uid="reindex.capture.deleting")
    signals.post_delete.connect(_deleted, dispatch_uid="reindex.capture.deleted")
    signals.m2m_changed.connect(_m2m_changed, dispatch_uid="reindex.capture.m2m")
    setting_changed.connect(_settings_changed, dispatch_uid="reindex.capture.settings")


def _settings_changed(setting: str, **kwargs: Any) -> None:
    if setting == "REINDEX":  # tests override it: the definitions registered may differ
        reset()


def routes() -> dict[type, list[Route]]:
    """Models -> routes, from the registered definitions that declare ``watch`` (read on the first change).

    Empty when ``REINDEX["QUEUE_CAPTURE"]`` is False.
    """
    global _routes
    if _routes is None:
        with _lock:
            if _routes is None:
                _routes = build_routes(_watching_definitions())
    return _routes


def reset() -> None:
    """Forget the routes: the next change reads the registry again (after registering a definition)."""
    global _routes
    _routes = None


def _watching_definitions() -> list[Any]:
    """The definitions that declare ``watch``; none (logged) when the configuration is wrong.

    A wrong ``REINDEX`` setting or definition must not make every save of the site fail:
    the commands report it (exit 2), capture stays off until it is fixed.
    """
    from reindex.config import Config
    from reindex.definitions.definition import discover
    from reindex.errors import ReindexError

    try:
        config = Config.load()
        if not config.queue_capture:
            return []
        return [d for d in discover(config) if d.queues_changes]
    except ReindexError as exc:
        logger.error("reindex: saves queue nothing: %s", exc)
        return []


def build_routes(definitions: Iterable[Any]) -> dict[type, list[Route]]:
    """The routes of these definitions: each one's own model, then each model it watches."""
    from django.apps import apps

    table: dict[type, list[Route]] = {}
    for definition in definitions:
        model = definition.get_queryset().model
        table.setdefault(model._meta.concrete_model, []).append(Route(definition.alias, model, None))
        for watched, lookup in dict(definition.watch).items():
            related = apps.get_model(watched) if isinstance(watched, str) else watched
            table.setdefault(related._meta.concrete_model, []).append(Route(definition.alias, model, lookup))
    return table


@contextmanager
def paused() -> Iterator[None]:
    """Queue nothing inside the block (in this thread or task)."""
    token = _paused.set(True)
    try:
        yield
    finally:
        _paused.reset(token)


def capture(model: Any, instances: list[Any], using: str, which: str = "all") -> int:
    """Queue the documents that a change of ``instances`` (rows of ``model``) touches; return the entries.

    ``which``: "own" (the rows' own documents), "related" (the documents that carry them), or "all".
    """
    from reindex.queue.entries import enqueue_keys, queue_database

    if _paused.get() or not instances:
        return 0
    candidates = routes().get(model._meta.concrete_model, ())  # a proxy model's rows are its concrete model's
    found = [r for r in candidates if which == "all" or (which == "own") == (r.lookup is None)]
    pairs = [(route.alias, pk) for route in found for pk in route.keys(instances, using)]
    return enqueue_keys(pairs, queue_database()) if pairs else 0


def _saved(sender: type, instance: Any, using: str, **kwargs: Any) -> None:
    capture(sender, [instance], using)


def _deleting(sender: type, instance: Any, using: str, **kwargs: Any) -> None:
    # Before the delete: the rows linking a related row to the documents are still there.
    capture(sender, [instance], using, "related")


def _deleted(sender: type, instance: Any, using: str, **kwargs: Any) -> None:
    capture(sender, [instance], using, "own")


def _m2m_changed(
    sender: type, instance: Any, action: str, model: type, pk_set: set[Any] | None, using: str, **kwargs: Any
) -> None:
    """Both sides of an added, removed or cleared link: the instance, and the rows linked or unlinked."""
    if action not in ("post_add", "post_remove", "pre_clear"):
        return
    if action == "pre_clear":
        pk_set = set(_linked(sender, instance, model, using))
    capture(type(instance), [instance], using, "own")
    if pk_set:
        capture(model, [model(pk=pk) for pk in pk_set], using, "own")


def _linked(through: Any, instance: Any, model: type, using: str) -> list[Any]:
    """The primary keys of the ``model`` rows linked to ``instance`` through ``through``."""
    source = target = None
    for field in through._meta.fields:
        remote = getattr(field.remote_field, "model", None)
        if remote is type(instance) and source is None:
            source = field
        elif remote is model:
            target = field
    if source is None or target is None:
        return []
    links = through._base_manager.using(using).filter(**{source.attname: instance.pk})
    return list(links.values_list(target.attname, flat=True))
