"""Cursors for deep, stable pagination: where the next page starts, signed so no one can forge one.

A cursor pins what the first page searched: the concrete index the alias pointed at
(so a rebuild's swap does not shift the pages) or a point in time, and holds the sort
values of the last row shown (``search_after``). It is a URL-safe string made with
``django.core.signing`` (the site's ``SECRET_KEY``); a tampered or truncated cursor, or
one made for another query, raises ``InvalidCursor``::

    text = Cursor(fingerprint="ab12", after=[4.2, "17"], indexes=("products-20261206",)).encode()
    Cursor.decode(text, fingerprint="ab12")
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from reindex.errors import InvalidCursor

SALT = "reindex.search.cursor"
VERSION = 1


@dataclass(frozen=True)
class Cursor:
    """Where the next page of one query starts."""

    #: The digest of the query's body (``query.fingerprint``): the cursor serves that query only.
    fingerprint: str
    #: The sort values of the last row shown: the next page's ``search_after``.
    after: list[Any]
    #: The concrete indexes the first page read (none with a point in time).
    indexes: tuple[str, ...] = ()
    #: The point in time's id and keep-alive, when the pages are read in one.
    pit: str | None = None
    keep_alive: str | None = None
    #: The sort field that breaks ties (``_id``; ``_shard_doc`` in an Elasticsearch point in time).
    tiebreaker: str = "_id"

    def encode(self) -> str:
        """The signed, URL-safe string."""
        from django.core import signing

        payload = {"v": VERSION, **asdict(self), "indexes": list(self.indexes)}
        return signing.dumps(payload, salt=SALT, compress=True)

    @classmethod
    def decode(cls, text: str, fingerprint: str) -> Cursor:
        """The cursor ``text`` holds; InvalidCursor if it was not signed here or was made for another query."""
        from django.core import signing

        try:
            payload = signing.loads(str(text), salt=SALT)
        except signing.BadSignature:
            raise InvalidCursor("invalid cursor: it was changed, cut short or made by another site") from None
        if not isinstance(payload, dict) or payload.pop("v", None) != VERSION:
            raise InvalidCursor("invalid cursor: made by another version of reindex")
        try:
            cursor = cls(**{**payload, "indexes": tuple(payload.get("indexes") or ())})
        except TypeError:
            raise InvalidCursor("invalid cursor: made by another version of reindex") from None
        if cursor.fingerprint != fingerprint:
            raise InvalidCursor("invalid cursor: it was made for another query")
        return cursor
