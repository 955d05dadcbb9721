"""Result objects become JSON one way: from their dataclass fields, with the few exceptions declared once.

A result is a dataclass that inherits ``JsonResult``; ``as_dict()`` walks its fields in
the order they are declared and converts each value the same way (datetimes to ISO
strings, nested results and lists or dicts of them recursively). A field says how it
differs by its ``metadata=json_as(...)``, and keys that are not the class's own fields
(inherited counts, properties) are placed by ``json_placed``::

    @dataclass
    class Pruned(JsonResult):
        json_placed: ClassVar = {"alias": ("count",)}

        alias: str
        dropped: list[str]
        seconds: float = field(default=0.0, metadata=json_as(rounded=3))
        marker: object = field(default=None, metadata=json_as(None))  # not in the JSON

        @property
        def count(self) -> int:
            return len(self.dropped)

    Pruned("products", ["products-1"], 1.23456).as_dict()
    # {"alias": "products", "count": 1, "dropped": ["products-1"], "seconds": 1.235}
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

#: How a key not among the class's own fields is computed: an attribute's name, or the key and a function of the result.
Placed = str | tuple[str, Callable[[Any], Any]]

_KEY = "json"
_CONVERT = "json_convert"
_FLATTEN = "json_flatten"
_OWN = object()


def json_as(
    key: str | object | None = _OWN,
    *,
    rounded: int | None = None,
    convert: Callable[[Any], Any] | None = None,
    flatten: bool = False,
) -> dict[str, Any]:
    """The ``metadata`` of a dataclass field that becomes JSON otherwise than as itself.

    ``key``: the JSON key when it is not the field's name, or None to leave the field out;
    ``rounded``: the digits a float (of seconds) keeps; ``convert``: a function of the value
    for anything else; ``flatten``: the nested result's keys take the field's place.
    """
    metadata: dict[str, Any] = {}
    if key is not _OWN:
        metadata[_KEY] = key
    if rounded is not None:
        digits = rounded
        metadata[_CONVERT] = lambda value: None if value is None else round(value, digits)
    if convert is not None:
        metadata[_CONVERT] = convert
    if flatten:
        metadata[_FLATTEN] = True
    return metadata


def to_json(value: Any) -> Any:
    """``value`` as JSON data: results by their ``as_dict()``, datetimes in ISO, containers item by item."""
    if isinstance(value, JsonResult):
        return value.as_dict()
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, Mapping):
        return {key: to_json(item) for key, item in value.items()}
    return value


class JsonResult:
    """A dataclass whose ``as_dict()`` (what ``--json`` prints) is read from its fields."""

    #: Keys that are not the class's own fields (inherited fields, properties), each group
    #: placed right after the key named ("" places it first); inherited fields not named
    #: here are not in the JSON.
    json_placed: ClassVar[Mapping[str, tuple[Placed, ...]]] = {}

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON data, keys in the order the class declares them."""
        data: dict[str, Any] = {}
        self._place("", data)
        own = _own_fields(type(self))
        for spec in dataclasses.fields(self):  # type: ignore[arg-type]
            key = spec.metadata.get(_KEY, spec.name)
            if spec.name not in own or key is None:
                continue
            value = getattr(self, spec.name)
            convert = spec.metadata.get(_CONVERT)
            value = to_json(value if convert is None else convert(value))
            if spec.metadata.get(_FLATTEN):
                data.update(value)
            else:
                data[key] = value
            self._place(key, data)
        return data

    def _place(self, after: str, data: dict[str, Any]) -> None:
        for placed in self.json_placed.get(after, ()):
            key, value = (placed, getattr(self, placed)) if isinstance(placed, str) else (placed[0], placed[1](self))
            data[key] = to_json(value)
            self._place(key, data)


def _own_fields(cls: type) -> frozenset[str]:
    """The fields ``cls`` declares itself (a base class's fields are in the JSON only where placed)."""
    inherited: set[str] = set()
    for base in cls.__mro__[1:]:
        if dataclasses.is_dataclass(base):
            inherited.update(spec.name for spec in dataclasses.fields(base))
    return frozenset(spec.name for spec in dataclasses.fields(cls)) - inherited  # type: ignore[arg-type]
