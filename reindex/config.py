"""The configuration of every run, resolved once: defaults, settings, environment, overrides.

Each value comes from the first of these that gives it, last first:

1. explicit overrides (command-line flags, keyword arguments of the Python API);
2. the environment: ``REINDEX_ES_URL`` (the server) and ``REINDEX_ES_API_KEY``;
3. ``settings.REINDEX`` (keys in capitals: ``"BATCH_SIZE"``);
4. the defaults of ``Config``'s fields, the only place defaults are written.

::

    config = Config.load(batch_size=500, es_url="http://search:9200")  # in a Django process
    config = Config.from_sources({"HOSTS": ["http://search:9200"]})  # no Django needed

A ``Config`` is immutable and picklable: worker processes receive the very object
their parent resolved.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reindex.errors import ConfigurationError

ENV_URL = "REINDEX_ES_URL"
ENV_API_KEY = "REINDEX_ES_API_KEY"

#: Who may load a build's ranges (``Config.executor``).
EXECUTORS = ("local", "processes", "celery")

#: Keys of ``settings.REINDEX`` that are not run options: where definitions come from.
DISCOVERY_KEYS = ("INDEXES", "AUTODISCOVER")


@dataclass(frozen=True)
class Config:
    """Everything a run needs: how to connect, how to retry, how to lock, how to load."""

    # -- the connection -----------------------------------------------------------
    hosts: tuple[str, ...] = ("http://localhost:9200",)
    api_key: str | tuple[str, str] | None = None
    basic_auth: tuple[str, str] | None = None
    ca_certs: str | None = None
    verify_certs: bool = True
    #: Seconds per request.
    timeout: float = 30.0
    #: Any other keyword for ``elasticsearch.Elasticsearch(...)``.
    client_options: Mapping[str, Any] = field(default_factory=dict)
    # -- retries of transient errors (429/502/503/504, dropped connections, timeouts) --
    max_retries: int = 8
    retry_backoff: float = 0.5
    retry_backoff_max: float = 10.0
    retry_on_timeout: bool = True
    # -- the lock of an alias -----------------------------------------------------
    lock_ttl: float = 300.0
    lock_index: str = "reindex-locks"
    #: Seconds a run waits for another run to release the alias's lock before it is
    #: skipped (exit 3); 0: skip at once.
    lock_wait: float = 0.0
    # -- loading --------------------------------------------------------------------
    #: Rows per database query and documents per bulk request (a definition's own
    #: ``batch_size`` wins over this default, an explicit override over both).
    batch_size: int = 1000
    max_chunk_bytes: int = 10 * 1024 * 1024
    workers: int = 1
    #: How workers start: None = "fork" on Linux, "spawn" elsewhere.
    worker_start: str | None = None
    #: Who loads the ranges: "local" (this process), "processes" (``workers`` forked
    #: processes) or "celery" (the site's Celery workers); None: "processes" when
    #: ``workers`` > 1, else "local".
    executor: str | None = None
    #: Rows per primary-key range at most: the unit of work of every executor and of ``--resume``.
    range_size: int = 100_000
    #: The Celery queue the range tasks go to (``--queue``).
    celery_queue: str = "reindex"
    #: Dotted path of the site's Celery app (e.g. ``"mysite.celery.app"``); None: Celery's current app.
    celery_app: str | None = None
    max_errors: int = 0
    keep: int = 0
    min_ratio: float = 0.5
    # -- freshness (``update`` and the rebuild's catch-up) ----------------------------
    #: Seconds read again before a watermark: a transaction that stamped its rows before
    #: the watermark was taken may commit after the read, and clocks may disagree.
    update_overlap: float = 60.0
    # -- the change queue (``reindex drain``, ``reindex.capture``) --------------------
    #: False: saves queue nothing (the signal handlers are not connected).
    queue_capture: bool = True
    #: Seconds a drainer holds a batch; a drainer that died loses its batch to others after it.
    queue_lease: float = 300.0
    #: Failed tries after which an entry is dead (``reindex queue retry`` puts it back).
    queue_max_attempts: int = 5
    #: Seconds before the second try of a failed entry, doubled at each further failure, at most the max.
    queue_backoff: float = 10.0
    queue_backoff_max: float = 3600.0
    #: Seconds ``drain --loop`` sleeps when the queue is empty; also how soon an entry drained
    #: while a rebuild loads is drained again (into the new index once it is live).
    queue_poll_interval: float = 1.0
    # -- the event stream (``reindex stream``, PostgreSQL logical decoding) ------------
    #: Seconds ``reindex stream`` waits when the log holds nothing new for an alias.
    stream_poll_interval: float = 0.2
    #: Changes read from the log at most per round (whole transactions: a larger one is read whole).
    stream_batch: int = 5000
    #: Seconds the oldest change not yet streamed may be old before ``slot status`` and health complain.
    stream_max_lag: float = 300.0
    #: Megabytes of WAL a slot may make PostgreSQL keep before ``slot status`` and health complain.
    stream_max_retained: float = 1024.0
    # -- searching (``reindex.search``) ------------------------------------------------
    #: Seconds a search request may take before ``SearchUnavailable``; no retries: a person is waiting.
    search_timeout: float = 2.0
    #: The exact total a search asks for at most (``track_total_hits``); ``count()`` is capped at it.
    search_total_bound: int = 10_000
    #: Queue the documents of hits whose rows are gone, so the next ``drain`` removes them (when the
    #: definition's changes are queued: it has ``watch``). False: drop them from the page only.
    search_heal: bool = True
    # -- health (``reindex.health()``, the health endpoint, the admin page) ----------
    #: Rows and documents the health check's sampled ``verify`` compares per alias; 0: no verify.
    health_verify_sample: int = 100
    #: Seconds the oldest change waiting in an alias's queue may be old before the alias is unhealthy.
    health_max_queue_lag: float = 300.0
    #: Dead queue entries an alias may have before it is unhealthy.
    health_max_dead: int = 0
    # -- where definitions come from -------------------------------------------------
    indexes: tuple[str, ...] = ()
    autodiscover: bool = True
    #: Where each field's value came from: "settings", "environment" or "override"
    #: (a field not named here has its default).
    origins: Mapping[str, str] = field(default_factory=dict)

    @property
    def explicit(self) -> frozenset[str]:
        """The fields given as explicit overrides (flags, keyword arguments)."""
        return frozenset(name for name, origin in self.origins.items() if origin == "override")

    def origin(self, name: str) -> str:
        """Where ``name``'s value came from: "default", "settings", "environment" or "override"."""
        return self.origins.get(name, "default")

    @classmethod
    def load(cls, **overrides: Any) -> Config:
        """The configuration from Django's ``settings.REINDEX``, the environment and ``overrides``."""
        from django.conf import settings

        given = getattr(settings, "REINDEX", None) or {}
        if not isinstance(given, Mapping):
            raise ConfigurationError("settings.REINDEX must be a dict")
        return cls.from_sources(given, os.environ, overrides)

    @classmethod
    def from_sources(
        cls,
        settings: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Config:
        """Resolve a configuration from a ``REINDEX`` dict, an environment and overrides.

        ``overrides`` take the field names (``batch_size``), plus ``es_url`` for one host;
        a value of None is no override. Raises ConfigurationError naming a wrong key or value.
        """
        values: dict[str, Any] = {}
        origins: dict[str, str] = {}
        for key, value in (settings or {}).items():
            name = key.lower() if isinstance(key, str) else key
            if name not in SETTING_FIELDS or key != name.upper():
                raise ConfigurationError(f"settings.REINDEX has an unknown key {key!r} (known: {_known_settings()})")
            values[name] = _checked(name, value, f"REINDEX[{key!r}]")
            origins[name] = "settings"
        environ = os.environ if environ is None else environ
        for variable, name in ((ENV_URL, "hosts"), (ENV_API_KEY, "api_key")):
            if environ.get(variable):
                values[name] = _checked(name, environ[variable], f"${variable}")
                origins[name] = "environment"
        for name, value in (overrides or {}).items():
            if value is None:
                continue
            if name == "es_url":
                name, value = "hosts", (value,)
            elif name not in SETTING_FIELDS:
                known = ", ".join(sorted({"es_url", *SETTING_FIELDS}))
                raise ConfigurationError(f"unknown option {name!r} (known: {known})")
            values[name] = _checked(name, value, name)
            origins[name] = "override"
        return cls(**values, origins=origins)

    def replace(self, **overrides: Any) -> Config:
        """A copy with ``overrides`` applied as explicit ones (None: unchanged)."""
        changed = Config.from_sources({}, {}, overrides)
        given = {name: getattr(changed, name) for name in changed.explicit}
        return dataclasses.replace(self, **given, origins={**self.origins, **changed.origins})

    @property
    def executor_name(self) -> str:
        """The executor that loads the ranges: the one asked for, else by ``workers``."""
        return self.executor or ("processes" if self.workers > 1 else "local")

    def batch_size_for(self, definition: Any) -> int:
        """Rows per batch for ``definition``: an override, else its own ``batch_size``, else the default."""
        own = getattr(definition, "batch_size", None)
        if "batch_size" in self.explicit or not own:
            return self.batch_size
        return int(_checked("batch_size", own, f"{type(definition).__name__}.batch_size"))


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _start_method(value: Any) -> bool:
    return value is None or value in multiprocessing.get_all_start_methods()


#: The checks of each field's value: (test, what it must be).
_CHECKS: dict[str, tuple[Any, str]] = {
    "hosts": (lambda v: bool(v) and all(isinstance(h, str) and h for h in v), "a non-empty list of URLs"),
    "api_key": (lambda v: v is None or isinstance(v, str) or len(v) == 2, "a string or an (id, key) pair"),
    "basic_auth": (lambda v: v is None or len(v) == 2, "a (user, password) pair"),
    "ca_certs": (lambda v: v is None or isinstance(v, str), "a file path"),
    "verify_certs": (lambda v: isinstance(v, bool), "True or False"),
    "timeout": (lambda v: _number(v) and v > 0, "a number of seconds above 0"),
    "client_options": (lambda v: isinstance(v, Mapping), "a dict"),
    "max_retries": (_count, "a whole number >= 0"),
    "retry_backoff": (lambda v: _number(v) and v > 0, "a number of seconds above 0"),
    "retry_backoff_max": (lambda v: _number(v) and v > 0, "a number of seconds above 0"),
    "retry_on_timeout": (lambda v: isinstance(v, bool), "True or False"),
    "lock_ttl": (lambda v: _number(v) and v > 0, "a number of seconds above 0"),
    "lock_index": (lambda v: isinstance(v, str) and v and v == v.lower() and v[0] not in "-_+.", "an index name"),
    "lock_wait": (_number, "a number of seconds >= 0"),
    "batch_size": (_positive_int, "a whole number >= 1"),
    "max_chunk_bytes": (_positive_int, "a whole number of bytes >= 1"),
    "workers": (_positive_int, "a whole number >= 1"),
    "worker_start": (_start_method, f"None or one of {', '.join(multiprocessing.get_all_start_methods())}"),
    "executor": (lambda v: v is None or v in EXECUTORS, f"None or one of {', '.join(EXECUTORS)}"),
    "range_size": (_positive_int, "a whole number >= 1"),
    "celery_queue": (lambda v: isinstance(v, str) and bool(v), "a queue name"),
    "celery_app": (lambda v: v is None or (isinstance(v, str) and "." in v), "None or a dotted path"),
    "max_errors": (_count, "a whole number >= 0"),
    "keep": (_count, "a whole number >= 0"),
    "min_ratio": (lambda v: _number(v) and v <= 1, "a number from 0 to 1"),
    "update_overlap": (_number, "a number of seconds >= 0"),
    "queue_capture": (lambda v: isinstance(v, bool), "True or False"),
    "queue_lease": (lambda v: _number(v) and v > 0, "a number of seconds above 0"),
    "queue_max_attempts": (_positive_int, "a whole number >= 1"),
    "queue_backoff": (_number, "a number of seconds >= 0"),
    "queue_backoff_max": (_number, "a number of seconds >= 0"),
    "queue_poll_interval": (lambda v: _number(v) and v > 0, "a number of seconds above 0"),
    "stream_poll_interval": (lambda v: _number(v) and v > 0, "a number of seconds above 0"),
    "stream_batch": (_positive_int, "a whole number >= 1"),
    "stream_max_lag": (lambda v: _number(v) and v > 0, "a number of seconds above 0"),
    "stream_max_retained": (lambda v: _number(v) and v > 0, "a number of megabytes above 0"),
    "search_timeout": (lambda v: _number(v) and v > 0, "a number of seconds above 0"),
    "search_total_bound": (_positive_int, "a whole number >= 1"),
    "search_heal": (lambda v: isinstance(v, bool), "True or False"),
    "health_verify_sample": (_count, "a whole number >= 0"),
    "health_max_queue_lag": (lambda v: _number(v) and v > 0, "a number of seconds above 0"),
    "health_max_dead": (_count, "a whole number >= 0"),
    "indexes": (lambda v: not isinstance(v, str) and all(isinstance(p, str) for p in v), "a list of dotted paths"),
    "autodiscover": (lambda v: isinstance(v, bool), "True or False"),
}
SETTING_FIELDS = frozenset(_CHECKS)
SECRET_FIELDS = frozenset({"api_key", "basic_auth", "client_options"})
assert {f.name for f in dataclasses.fields(Config)} - {"origins"} == SETTING_FIELDS


def _checked(name: str, value: Any, where: str) -> Any:
    if name == "hosts" and isinstance(value, str):
        value = [value]
    test, must_be = _CHECKS[name]
    try:
        ok = bool(test(value))
    except TypeError:
        ok = False
    if not ok:
        shown = type(value).__name__ if name in SECRET_FIELDS else f"{value!r:.60}"
        raise ConfigurationError(f"{where} must be {must_be}, not {shown}")
    if name in ("hosts", "indexes", "basic_auth") or (name == "api_key" and not isinstance(value, str)):
        value = None if value is None else tuple(value)
    return value


def _known_settings() -> str:
    return ", ".join(sorted(name.upper() for name in SETTING_FIELDS))
