"""``--errors-file``: one JSON line per row that did not make it into the index.

Each line is ``{"alias": ..., "id": ..., "reason": ..., "error_type": ...}``; every
failure is written, not only the first ones the report keeps::

    with FailureLog("/var/log/reindex/failed.jsonl") as log:
        rebuild(definition, client, RebuildOptions(on_failure=log.for_alias("products")))
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import IO, Any

from reindex.definitions.documents import Failure
from reindex.errors import ConfigurationError


class FailureLog:
    """A JSON-lines file of failed rows, opened (and truncated) on entry."""

    def __init__(self, path: str, redact: Callable[[str], str] = str) -> None:
        self.path = path
        self.redact = redact
        self.written = 0
        self._file: IO[str] | None = None

    def __enter__(self) -> FailureLog:
        try:
            self._file = open(self.path, "w", encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"cannot write --errors-file {self.path}: {exc.strerror}") from None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def write(self, alias: str, failure: Failure) -> None:
        assert self._file is not None, "use FailureLog as a context manager"
        line = json.dumps({"alias": alias, **failure.as_dict()}, ensure_ascii=False, default=str)
        self._file.write(self.redact(line) + "\n")
        self._file.flush()
        self.written += 1

    def for_alias(self, alias: str) -> Callable[[Failure], None]:
        """A callback for ``RebuildOptions.on_failure`` that writes ``alias``'s failures."""
        return lambda failure: self.write(alias, failure)
