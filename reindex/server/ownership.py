"""The marker that says this tool built an index, read and written only here.

Every index the tool creates carries it in its mapping's ``_meta``::

    {"reindex": {"owner": "reindex", "alias": "products",
                 "definition": "shop.indexes.ProductIndex", "created": "...",
                 "building": true, "fingerprint": "...", "fields": ["name", ...]}}

``building`` is true from creation until the alias moves to the index (then
``went_live`` records when). Only indexes whose marker names this tool and the alias
are ever deleted; an owned index still marked as building and not live was abandoned
by a killed run, unless a run holding the alias's lock is loading it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

OWNER = "reindex"
META_KEY = "reindex"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Marker:
    """What an index's ``_meta.reindex`` says (all empty for an index without one)."""

    owner: str | None = None
    alias: str | None = None
    definition: str | None = None
    created: str | None = None
    building: bool = False
    went_live: str | None = None
    migrated: str | None = None
    fingerprint: str | None = None
    fields: list[str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def owned_for(self, alias: str) -> bool:
        """True when this tool built the index for ``alias``."""
        return self.owner == OWNER and self.alias == alias


_KNOWN = ("owner", "alias", "definition", "created", "building", "went_live", "migrated", "fingerprint", "fields")


def read_marker(mappings: dict[str, Any] | None) -> Marker:
    """The marker in an index's mappings (as the get-index or get-mapping API returns them)."""
    raw = ((mappings or {}).get("_meta") or {}).get(META_KEY)
    if not isinstance(raw, dict):
        return Marker()
    known = {key: raw[key] for key in _KNOWN if key in raw}
    known["building"] = raw.get("building") is True
    return Marker(**known, extra={k: v for k, v in raw.items() if k not in _KNOWN})


def new_index_meta(
    declared_meta: dict[str, Any] | None, alias: str, definition: str, fingerprint: str, fields: list[str]
) -> dict[str, Any]:
    """The ``_meta`` of an index about to be created: the definition's own, plus a marker saying it is building."""
    marker = {
        "owner": OWNER,
        "alias": alias,
        "definition": definition,
        "created": _now(),
        "building": True,
        "fingerprint": fingerprint,
        "fields": fields,
    }
    return {**(declared_meta or {}), META_KEY: marker}


def went_live_meta(live_meta: dict[str, Any] | None) -> dict[str, Any]:
    """An index's ``_meta`` updated to say it went live just now."""
    meta = dict(live_meta or {})
    meta[META_KEY] = {**(meta.get(META_KEY) or {}), "building": False, "went_live": _now()}
    return meta


def migrated_meta(
    live_meta: dict[str, Any] | None, declared_meta: dict[str, Any] | None, fingerprint: str, fields: list[str]
) -> dict[str, Any]:
    """An index's ``_meta`` after ``migrate`` applied a definition with this fingerprint and these fields."""
    meta = {**(live_meta or {}), **(declared_meta or {})}
    marker = {**((live_meta or {}).get(META_KEY) or {}), "fingerprint": fingerprint, "fields": fields}
    marker["migrated"] = _now()
    meta[META_KEY] = marker
    return meta
