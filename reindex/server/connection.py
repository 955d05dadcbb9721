"""Building the Elasticsearch client from settings, and keeping secrets out of text.

The client sends plain ``application/json`` instead of the
``application/vnd.elasticsearch+json; compatible-with=N`` media type, and does not
insist on the ``X-Elastic-Product: Elasticsearch`` header that OpenSearch never sends,
so one client version talks to Elasticsearch 8 and 9 and to OpenSearch::

    client = Connection(Config.load()).client()
    client.info()["version"]["number"]
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from elastic_transport import HttpHeaders, Transport, TransportApiResponse

from reindex.config import Config
from reindex.errors import ConfigurationError, ConnectionFailed, ServerError, ServerUnreachable
from reindex.server.retries import BackoffRetries, retry_options, with_backoff

logger = logging.getLogger("reindex.server.connection")

_COMPAT = re.compile(r"application/vnd\.elasticsearch\+([\w-]+)\s*;\s*compatible-with=\d+")
#: The header the official client requires on a successful answer (elasticsearch-py 8 and 9,
#: ``BaseClient._perform_request``); Elasticsearch sends it, OpenSearch never does.
PRODUCT_HEADER = "X-Elastic-Product"
#: Answers that say the server is there but cannot serve now: an outage, not a wrong setting.
OUTAGE_STATUSES = frozenset({429, 502, 503, 504})


class PlainJsonTransport(Transport):
    """A transport for Elasticsearch 8 and 9 and OpenSearch alike.

    It rewrites the compatibility media types back to plain ones, and fills in the
    product header on a successful answer that lacks it: the client raises
    ``UnsupportedProductError`` on such an answer, and checks again in every copy
    that ``client.options()`` makes, so the transport is the one place that covers
    them all. ``Connection.check()`` asks the server who it is instead.
    """

    def perform_request(self, method: str, target: str, *, headers: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        if headers:
            headers = headers.copy()
            for key in ("accept", "content-type"):
                value = headers.get(key)
                if value:
                    headers[key] = _COMPAT.sub(r"application/\1", value)
        meta, body = super().perform_request(method, target, headers=headers, **kwargs)
        if 200 <= meta.status < 300 and PRODUCT_HEADER not in meta.headers:
            filled = HttpHeaders(meta.headers)
            filled[PRODUCT_HEADER] = "Elasticsearch"
            meta = dataclasses.replace(meta, headers=filled)
        return TransportApiResponse(meta, body)


class ReindexTransport(BackoffRetries, PlainJsonTransport):
    """Plain JSON, transient errors retried with backoff (see ``reindex.server.retries``), and the
    server's reason for an error answer to a HEAD request.

    An answer to HEAD has no body, so an error (other than 404: "no such thing") would
    reach the user as a bare status; the same path asked with GET, which only reads,
    gives the reason the server has for it.
    """

    def perform_request(self, method: str, target: str, **kwargs: Any) -> Any:  # type: ignore[override]
        response = super().perform_request(method, target, **kwargs)
        if method == "HEAD" and response.meta.status >= 400 and response.meta.status != 404:
            explained = super().perform_request("GET", target, **kwargs)
            if explained.meta.status == response.meta.status:
                return explained
        return response


def split_credentials(url: str) -> tuple[str, tuple[str, str] | None]:
    """Take ``user:password@`` out of a URL: ``(clean_url, (user, password))``."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.username is None:
        return urlunsplit(parts), None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    clean = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return clean, (unquote(parts.username), unquote(parts.password or ""))


class Connection:
    """How to reach the cluster: the client's keyword arguments plus the secrets to hide.

    Nothing connects until ``client()`` or ``check()`` is called::

        connection = Connection(Config.load())
        connection.check()  # ConnectionFailed (one line) if the server cannot answer
        client = connection.client()
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        self.options, self.secrets = client_options(config)
        self.hosts: list[str] = list(self.options["hosts"])
        self._client: Any = None

    def client(self) -> Any:
        """The (cached) ``Elasticsearch`` client."""
        if self._client is None:
            from elasticsearch import Elasticsearch

            if not self.config.verify_certs:
                logger.warning("TLS certificate verification is off (REINDEX['VERIFY_CERTS'])")
            self._client = Elasticsearch(**self.options)
        return self._client

    def redact(self, text: str) -> str:
        """``text`` with every known secret replaced by ``***``."""
        return redact(text, self.secrets)

    def check(self) -> dict[str, Any]:
        """Ask the server who it is; raise ConnectionFailed (one line) if it cannot answer as one."""
        from elastic_transport import SerializationError
        from elasticsearch import ApiError, AuthenticationException
        from elasticsearch import ConnectionError as EsConnectionError

        where = ", ".join(self.hosts)
        try:
            body = self._who_are_you()
        except SerializationError:
            body = None
        except AuthenticationException:
            raise ConnectionFailed(f"search server at {where} refused the credentials") from None
        except EsConnectionError as exc:
            message = f"cannot reach the search server at {where}: {_reason(exc)}"
            if self.config.origin("hosts") == "default":
                message += " (the default address: set REINDEX['HOSTS'], $REINDEX_ES_URL or --es-url)"
            raise ServerUnreachable(self.redact(message)) from None
        except ApiError as exc:
            failed = ServerUnreachable if exc.meta.status in OUTAGE_STATUSES else ConnectionFailed
            raise failed(self.redact(f"search server at {where} answered {exc.meta.status}: {exc.message}")) from None
        version = body.get("version") if isinstance(body, dict) else None
        if not isinstance(version, dict) or "number" not in version:
            # What the client's product check caught, which the transport turns off (see PlainJsonTransport).
            what = "is neither Elasticsearch nor OpenSearch (its GET / names no version)"
            raise ConnectionFailed(self.redact(f"the server at {where} {what}"))
        return body

    def _who_are_you(self) -> Any:
        """``GET /``'s body: failing at once when nothing answers, retried when a busy server answers 429/502-504."""
        from elasticsearch import ApiError

        try:
            return self.client().options(request_timeout=10, max_retries=0).info().body
        except ApiError as exc:
            if exc.meta.status not in OUTAGE_STATUSES:
                raise
        # The server is there but busy (or restarting): retried as every other request of a run is.
        return self.client().options(request_timeout=10).info().body

    @contextmanager
    def server_errors(self) -> Iterator[None]:
        """Turn an error answer of the server, or a transport failure, into a ServerError (exit 2)."""
        from elasticsearch import ApiError, TransportError

        try:
            yield
        except (ApiError, TransportError) as exc:
            raise ServerError(self.redact(describe_server_error(exc))) from exc


def describe_server_error(exc: BaseException) -> str:
    """One line for an error of the client: what the server answered, or why it could not."""
    from elasticsearch import ApiError

    if isinstance(exc, ApiError):
        reason = error_reason(exc)
        return f"the search server answered {exc.meta.status}" + (f": {reason}" if reason else "")
    return f"the search server failed: {type(exc).__name__}: {_reason(exc)}"


def describe_failure(exc: BaseException) -> str:
    """One line for an exception a run did not expect: what the server answered, or its type and message."""
    from elasticsearch import ApiError

    if isinstance(exc, ApiError):
        return describe_server_error(exc)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message}"


def error_reason(exc: Any) -> str:
    """The ``reason`` the server gave in an error answer, else the client's message ("" when none)."""
    info = getattr(exc, "info", None) or getattr(exc, "body", None)
    if isinstance(info, dict):
        error = info.get("error")
        if isinstance(error, dict):
            return str(error.get("reason") or error.get("type") or "")
        if isinstance(error, str):
            return error
    message = getattr(exc, "message", None)
    return "" if message in (None, "None") else str(message)


def _reason(exc: BaseException) -> str:
    message = str(getattr(exc, "message", "") or exc)
    tls = re.search(r"\[SSL: (\w+)\] ([^(\]]+)", message)
    if tls:
        reason = f"TLS handshake failed: {tls.group(2).strip()}"
        if tls.group(1) == "WRONG_VERSION_NUMBER":
            reason += " (does the server speak plain HTTP? then use http://)"
        return reason
    # The transport repeats the whole urllib3 chain; its tail says what happened, and the
    # brackets it closes are the chain's, but for those the tail opened itself.
    tail = message.rsplit(":", 1)[-1].strip(" )'\"")
    return tail + ")" * (tail.count("(") - tail.count(")")) if tail else message


def client_options(config: Config) -> tuple[dict[str, Any], list[str]]:
    """The client's keyword arguments, and the list of secret strings to redact."""
    options: dict[str, Any] = dict(config.client_options)
    clean_hosts: list[str] = []
    url_auth = None
    for host in config.hosts:
        clean, creds = split_credentials(host)
        clean_hosts.append(clean)
        url_auth = creds or url_auth
    options["hosts"] = clean_hosts
    api_key, auth = config.api_key, config.basic_auth
    secrets = ([api_key] if isinstance(api_key, str) else list(api_key or ())) + list(auth or ())[1:]
    if api_key and auth and not url_auth:
        raise ConfigurationError("REINDEX sets both API_KEY and BASIC_AUTH; keep one")
    if url_auth:  # credentials given in the URL are the most specific: they win
        options["basic_auth"] = tuple(url_auth)
        secrets.append(url_auth[1])
    elif api_key:
        options["api_key"] = api_key
    elif auth:
        options["basic_auth"] = tuple(auth)
    if config.ca_certs:
        options["ca_certs"] = config.ca_certs
    if not config.verify_certs:
        options["verify_certs"] = False
        options.setdefault("ssl_show_warn", True)
    options.setdefault("request_timeout", config.timeout)
    options.setdefault("transport_class", with_backoff(ReindexTransport, config))
    for key, value in retry_options(config).items():
        options.setdefault(key, value)
    _use_fast_serializer(options)
    return options, [s for s in secrets if s]


def _use_fast_serializer(options: dict[str, Any]) -> None:
    try:
        from elasticsearch.serializer import OrjsonSerializer
    except ImportError:  # orjson not installed
        return
    serializers = dict(options.get("serializers") or {})
    serializers.setdefault("application/json", OrjsonSerializer())
    options["serializers"] = serializers


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace each secret, and any ``user:password@`` in URLs, with ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return re.sub(r"(\w+://)[^/\s:@]+:[^/\s@]+@", r"\1***@", text)
