"""The search side's client: made on the first search, short timeout, no retries, errors a view can show.

Importing a view that searches makes no network call; the first search does. A server
that is down, frozen past ``REINDEX["SEARCH_TIMEOUT"]`` seconds, or answering 5xx or
429 raises ``SearchUnavailable``; a query it rejects (400) raises ``BadQuery`` with its
reason; an index or point in time that is gone under a cursor raises ``CursorExpired``::

    client = search_client(Config.load())  # nothing sent yet
    response = client.search("products", {"query": {"match_all": {}}})
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from reindex.config import Config
from reindex.errors import BadQuery, CursorExpired, SearchUnavailable
from reindex.operations.alias_status import server_info
from reindex.server.connection import Connection, describe_server_error, error_reason

#: Error types of a 404 that mean "what the cursor pinned is gone", not "no such alias".
GONE = ("index_not_found_exception", "search_context_missing_exception", "search_phase_execution_exception")


class SearchClient:
    """One process's way to the server for searches: the client is built on the first request."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.connection = Connection(config)
        self._client: Any = None
        self._distribution: str | None = None

    @property
    def client(self) -> Any:
        """The ``Elasticsearch`` client with the search timeout and no retries (built on first use)."""
        if self._client is None:
            self._client = self.connection.client().options(
                request_timeout=self.config.search_timeout, max_retries=0, retry_on_timeout=False
            )
        return self._client

    def search(self, index: str | None, body: dict[str, Any], *, pinned: bool = False) -> dict[str, Any]:
        """Run one search (``index`` None: a point-in-time search); ``pinned``: a 404 means CursorExpired."""
        with self.errors(pinned=pinned):
            if index is None:
                return dict(self.client.search(body=body))
            return dict(self.client.search(index=index, body=body))

    @property
    def distribution(self) -> str:
        """``elasticsearch`` or ``opensearch``, asked once (``GET /``) when a point in time first needs it."""
        if self._distribution is None:
            with self.errors():
                self._distribution = server_info(self.client).distribution
        return self._distribution

    def open_point_in_time(self, index: str, keep_alive: str) -> str:
        """Open a point in time on ``index``: ``/_pit`` on Elasticsearch, ``/_search/point_in_time`` on OpenSearch."""
        with self.errors():
            if self.distribution == "opensearch":
                path = f"/{index}/_search/point_in_time"
                answer = self.client.perform_request(
                    "POST", path, params={"keep_alive": keep_alive}, headers={"accept": "application/json"}
                )
                return str(answer.body["pit_id"])
            return str(self.client.open_point_in_time(index=index, keep_alive=keep_alive)["id"])

    def close_point_in_time(self, pit_id: str) -> None:
        """Close a point in time early (it closes by itself after its keep-alive); a gone one is no error."""
        with self.errors():
            client = self.client.options(ignore_status=404)
            if self.distribution == "opensearch":
                headers = {"accept": "application/json", "content-type": "application/json"}
                client.perform_request("DELETE", "/_search/point_in_time", headers=headers, body={"pit_id": [pit_id]})
            else:
                client.close_point_in_time(id=pit_id)

    @contextmanager
    def errors(self, pinned: bool = False) -> Iterator[None]:
        """Turn what the client raises into SearchUnavailable, BadQuery or CursorExpired (one line each)."""
        from elasticsearch import ApiError, TransportError

        try:
            yield
        except ApiError as exc:
            raise self.error_for(exc, pinned) from exc
        except TransportError as exc:  # refused, reset, timed out
            raise SearchUnavailable(
                self.connection.redact(f"search is unavailable: {describe_server_error(exc)}")
            ) from exc

    def error_for(self, exc: Any, pinned: bool) -> Exception:
        """The exception a view gets for an error answer of the server."""
        status, reason = exc.meta.status, self.connection.redact(error_reason(exc))
        if pinned and status == 404 and _error_type(exc) in GONE:
            return CursorExpired(f"the cursor's results are gone (start again): {reason}")
        if status == 400:
            return BadQuery(f"the search server rejected the query: {root_reason(exc) or reason}")
        return self.unavailable(exc)

    def unavailable(self, exc: Any) -> SearchUnavailable:
        """SearchUnavailable saying what the server answered, or why it could not (secrets hidden)."""
        return SearchUnavailable(self.connection.redact(f"search is unavailable: {describe_server_error(exc)}"))


def _error_type(exc: Any) -> str:
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("type") or "") if isinstance(error, dict) else ""


def root_reason(exc: Any) -> str:
    """The reasons of an error answer, outermost first, each once (the parser's own words last), else ""."""
    body = getattr(exc, "body", None)
    error = body.get("error") if isinstance(body, dict) else None
    reasons: list[str] = []
    while isinstance(error, dict):
        reason = str(error.get("reason") or "")
        if reason and reason != "all shards failed" and not any(reason in seen for seen in reasons):
            reasons.append(reason)
        following = error.get("caused_by")
        if following is None and error.get("failed_shards"):  # Elasticsearch: the shard's error says why
            following = (error["failed_shards"][0] or {}).get("reason")
        error = following
    return ": ".join(reasons)


_clients: dict[str, SearchClient] = {}
_lock = threading.Lock()


def search_client(config: Config) -> SearchClient:
    """The process's ``SearchClient`` for ``config`` (one per distinct configuration, kept while it lives)."""
    key = repr({name: value for name, value in vars(config).items() if name != "origins"})
    with _lock:
        found = _clients.get(key)
        if found is None:
            if len(_clients) >= 16:  # a process that keeps changing its settings (tests) keeps a few
                _clients.clear()
            found = _clients[key] = SearchClient(config)
        return found
