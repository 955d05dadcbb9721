"""Declared versus live index definitions: normalising both sides, comparing, fingerprinting.

Pure functions over dicts. The server echoes a definition back in its own shape
(settings as strings, flattened keys, ``type: object`` left out, defaults added or
dropped), so both sides are normalised before they are compared::

    differences = compare_mappings(declared_mappings, live_mappings)
    differences += compare_settings(declared_settings, live_settings)
    [d.describe() for d in differences]  # ['name [analyzer]: folded -> standard', ...]
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from reindex.results import JsonResult

ADDED, REMOVED, CHANGED = "added", "removed", "changed"
IN_PLACE, REBUILD = "in-place", "rebuild"

#: Parameter -> its default in the server's spelling (see ``scalar``), or a tuple of spellings.
Defaults = dict[str, str | tuple[str, ...]]

#: Field parameters whose value, when given, is the same as leaving them out, for every field
#: type that takes them (Elasticsearch's mapping reference; OpenSearch's agrees). The server
#: echoes some of them back and drops others, so both sides drop them all. ``ignore_malformed``
#: and ``coerce`` are taken at their defaults even where ``index.mapping.ignore_malformed`` or
#: ``index.mapping.coerce`` changes them for the whole index.
FIELD_DEFAULTS: Defaults = {
    "index": "true",
    "doc_values": "true",
    "store": "false",
    "enabled": "true",
    "analyzer": "default",
    "boost": "1",
    "eager_global_ordinals": "false",
    "fielddata": "false",
    "ignore_malformed": "false",
    "index_phrases": "false",
    "position_increment_gap": "100",
    "similarity": "BM25",
    "split_queries_on_whitespace": "false",
    "term_vector": "no",
    "time_series_dimension": "false",
}
#: The date locale defaults to ENGLISH ("en") in Elasticsearch 8 and 9 and to ROOT in OpenSearch.
_DATES: Defaults = {"format": "strict_date_optional_time||epoch_millis", "locale": ("ROOT", "", "en")}
_NUMBERS: Defaults = {"coerce": "true"}
_SHAPES: Defaults = {"coerce": "false", "ignore_z_value": "true"}
#: Defaults that depend on the field type; they win over ``FIELD_DEFAULTS`` (e.g. ``index_options``
#: is ``positions`` for text but ``docs`` for keyword, ``doc_values`` is off for binary).
TYPE_DEFAULTS: dict[str, Defaults] = {
    "text": {"norms": "true", "index_options": "positions"},
    "search_as_you_type": {
        "norms": "true",
        "index_options": "positions",
        "doc_values": "false",
        "max_shingle_size": "3",
    },
    "keyword": {"norms": "false", "index_options": "docs", "ignore_above": "2147483647"},
    "wildcard": {"ignore_above": "2147483647"},
    "flattened": {"index_options": "docs", "ignore_above": "2147483647", "depth_limit": "20"},
    "date": _DATES,
    "date_nanos": {**_DATES, "format": "strict_date_optional_time_nanos||epoch_millis"},
    "date_range": {**_DATES, **_NUMBERS},
    **dict.fromkeys(
        ["long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float", "unsigned_long"], _NUMBERS
    ),
    **dict.fromkeys(["integer_range", "long_range", "float_range", "double_range", "ip_range"], _NUMBERS),
    "geo_point": {"ignore_z_value": "true"},
    "geo_shape": _SHAPES,
    "shape": _SHAPES,
    "object": {"subobjects": "true"},
    "nested": {"include_in_parent": "false", "include_in_root": "false"},
    "completion": {
        "analyzer": "simple",
        "preserve_separators": "true",
        "preserve_position_increments": "true",
        "max_input_length": "50",
    },
    "join": {"eager_global_ordinals": "true"},
    "binary": {"doc_values": "false"},
    "token_count": {"enable_position_increments": "true"},
    "rank_feature": {"positive_score_impact": "true"},
    "dense_vector": {"element_type": "float"},
}
#: Top-level mapping parameters equal to leaving them out.
ROOT_DEFAULTS: dict[str, Any] = {
    "dynamic": "true",
    "_source": {"enabled": "true"},
    "_routing": {"required": "false"},
    "date_detection": "true",
    "numeric_detection": "false",
    "subobjects": "true",
    "dynamic_date_formats": ["strict_date_optional_time", "yyyy/MM/dd HH:mm:ss Z||yyyy/MM/dd Z"],
}
#: Field parameters an existing field can change without a rebuild (the update mapping API).
IN_PLACE_PARAMETERS = frozenset(
    {"ignore_above", "search_analyzer", "search_quote_analyzer", "dynamic", "ignore_malformed", "coerce", "meta"}
    | {"eager_global_ordinals", "fielddata"}
)
#: Top-level mapping parameters that can change in place.
IN_PLACE_ROOT = frozenset({"dynamic", "dynamic_templates", "date_detection", "numeric_detection"})
#: Index settings the server lets an open index change (prefixes end with a dot).
DYNAMIC_SETTINGS = (
    "number_of_replicas",
    "auto_expand_replicas",
    "refresh_interval",
    "max_result_window",
    "max_inner_result_window",
    "max_rescore_window",
    "max_docvalue_fields_search",
    "max_script_fields",
    "max_ngram_diff",
    "max_shingle_diff",
    "max_refresh_listeners",
    "max_terms_count",
    "max_regex_length",
    "default_pipeline",
    "final_pipeline",
    "gc_deletes",
    "blocks.",
    "routing.allocation.",
    "routing.rebalance.",
    "search.",
    "indexing.",
    "translog.",
    "highlight.",
    "mapping.",
    "query.default_field",
)
#: Settings the server adds on its own; never compared.
SERVER_SETTINGS = ("uuid", "creation_date", "version.", "provided_name", "replication.", "history_uuid", "resize.")


@dataclass(frozen=True)
class Difference(JsonResult):
    """One way the live index differs from the definition in code.

    ``path`` is the field (``sellers.country``, a multi-field is ``name.raw``, the
    mapping's root is ``""``) or, for ``section == "settings"``, the setting key;
    ``parameter`` names the field parameter that differs (``None`` for a whole field).
    """

    section: str
    path: str
    parameter: str | None
    kind: str
    declared: Any
    live: Any
    consequence: str
    dynamic: bool = False

    @property
    def in_place(self) -> bool:
        return self.consequence == IN_PLACE

    @property
    def where(self) -> str:
        """``name [analyzer]``, ``[dynamic]``, ``settings number_of_shards``."""
        if self.section == "settings":
            return f"settings {self.path}"
        if self.parameter is None:
            return self.path
        return f"{self.path} [{self.parameter}]".lstrip()


# -- normalising ---------------------------------------------------------------------


def scalar(value: Any) -> Any:
    """The server's spelling of a scalar: ``True`` -> ``"true"``, ``1`` and ``1.0`` -> ``"1"``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, dict):
        return {k: scalar(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scalar(v) for v in value]
    return value


def normalise_mappings(mappings: dict[str, Any] | None) -> dict[str, Any]:
    """Mappings in one canonical shape; ``_meta`` (the tool's marker) is left out."""
    root = {k: scalar(v) for k, v in (mappings or {}).items() if k not in ("_meta", "properties")}
    root = {k: v for k, v in root.items() if ROOT_DEFAULTS.get(k) != v}
    properties = (mappings or {}).get("properties") or {}
    if properties:
        root["properties"] = {name: normalise_field(f) for name, f in properties.items()}
    return root


def normalise_field(field: dict[str, Any]) -> dict[str, Any]:
    """One field: no implicit ``type: object``, no defaults of its type, ``copy_to`` as a list."""
    defaults = field_defaults(str(field.get("type", "object")))
    out: dict[str, Any] = {}
    for key, value in field.items():
        if key in ("properties", "fields"):
            if value:
                out[key] = {name: normalise_field(sub) for name, sub in value.items()}
            continue
        value = scalar(value)
        if key == "copy_to" and isinstance(value, str):
            value = [value]
        if (key, value) == ("type", "object") or _is_default(defaults, key, value):
            continue
        out[key] = value
    # The search analyzer defaults to the analyzer, the search quote analyzer to the search
    # analyzer; the server leaves them out then.
    analyzer = out.get("analyzer", defaults["analyzer"])
    search_analyzer = out.get("search_analyzer", analyzer)
    if out.get("search_quote_analyzer") == search_analyzer:
        out.pop("search_quote_analyzer")
    if out.get("search_analyzer") == analyzer:
        out.pop("search_analyzer")
    return out


def field_defaults(field_type: str) -> Defaults:
    """The parameters a field of ``field_type`` has when they are left out (the server's spelling)."""
    return {**FIELD_DEFAULTS, **TYPE_DEFAULTS.get(field_type, {})}


def _is_default(defaults: Defaults, key: str, value: Any) -> bool:
    default = defaults.get(key)
    return value in default if isinstance(default, tuple) else value == default


def flatten(settings: dict[str, Any] | None, prefix: str = "") -> dict[str, Any]:
    """``{"index": {"analysis": {...}}}`` -> ``{"index.analysis....": ...}`` (lists kept whole)."""
    flat: dict[str, Any] = {}
    for key, value in (settings or {}).items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = scalar(value)
    return flat


def normalise_settings(settings: dict[str, Any] | None) -> dict[str, Any]:
    """Settings as flat keys without the ``index.`` prefix; what the server adds is dropped."""
    flat = {k.removeprefix("index."): v for k, v in flatten(settings).items()}
    return {k: v for k, v in flat.items() if not _matches(k, SERVER_SETTINGS)}


def _matches(key: str, names: Iterable[str]) -> bool:
    return any(key.startswith(n) if n.endswith(".") else key == n for n in names)


def fingerprint(settings: dict[str, Any] | None, mappings: dict[str, Any] | None) -> str:
    """A stable hash of a normalised definition: equal definitions, equal fingerprints."""
    canonical = {"settings": normalise_settings(settings), "mappings": normalise_mappings(mappings)}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def field_paths(mappings: dict[str, Any] | None) -> list[str]:
    """Every field path a mapping declares, multi-fields included: ``["name", "name.raw"]``."""
    return sorted(_paths(normalise_mappings(mappings).get("properties", {}), ""))


def _paths(properties: dict[str, Any], prefix: str) -> Iterator[str]:
    for name, field in properties.items():
        path = f"{prefix}{name}"
        yield path
        yield from _paths(field.get("properties", {}), f"{path}.")
        yield from _paths(field.get("fields", {}), f"{path}.")


# -- comparing -----------------------------------------------------------------------


def compare_mappings(
    declared: dict[str, Any] | None, live: dict[str, Any] | None, known_fields: Iterable[str] | None = None
) -> list[Difference]:
    """Differences between two mappings, root parameters first, then field by field.

    ``known_fields`` are the paths the live index was built with; a live field outside
    them came from dynamic mapping. ``None`` means unknown (nothing is flagged).
    """
    ours, theirs = normalise_mappings(declared), normalise_mappings(live)
    known = None if known_fields is None else set(known_fields)
    out = []
    for key in sorted((set(ours) | set(theirs)) - {"properties"}):
        if ours.get(key) != theirs.get(key):
            consequence = IN_PLACE if key in IN_PLACE_ROOT else REBUILD
            out.append(Difference("mappings", "", key, CHANGED, ours.get(key), theirs.get(key), consequence))
    out += _compare_properties(ours.get("properties", {}), theirs.get("properties", {}), "", known)
    return out


def _compare_properties(
    ours: dict[str, Any], theirs: dict[str, Any], prefix: str, known: set[str] | None
) -> list[Difference]:
    out = []
    for name in sorted(set(ours) | set(theirs)):
        path = f"{prefix}{name}"
        if name not in theirs:
            out.append(Difference("mappings", path, None, ADDED, ours[name], None, IN_PLACE))
        elif name not in ours:
            dynamic = known is not None and path not in known
            out.append(Difference("mappings", path, None, REMOVED, None, theirs[name], REBUILD, dynamic))
        else:
            out += _compare_field(ours[name], theirs[name], path, known)
    return out


def _compare_field(ours: dict[str, Any], theirs: dict[str, Any], path: str, known: set[str] | None) -> list[Difference]:
    if ours.get("type") != theirs.get("type"):
        return [Difference("mappings", path, "type", CHANGED, ours.get("type"), theirs.get("type"), REBUILD)]
    out = []
    for key in sorted((set(ours) | set(theirs)) - {"properties", "fields"}):
        if ours.get(key) != theirs.get(key):
            consequence = IN_PLACE if key in IN_PLACE_PARAMETERS else REBUILD
            out.append(Difference("mappings", path, key, CHANGED, ours.get(key), theirs.get(key), consequence))
    for key in ("properties", "fields"):
        out += _compare_properties(ours.get(key, {}), theirs.get(key, {}), f"{path}.", known)
    return out


def compare_settings(declared: dict[str, Any] | None, live: dict[str, Any] | None) -> list[Difference]:
    """Differences in the settings the definition declares, and in the whole ``analysis``.

    Settings the code does not declare are not compared (the server has its own
    defaults for them), except analysis components, which are compared both ways.
    """
    ours, theirs = normalise_settings(declared), normalise_settings(live)
    out = []
    for key in sorted(k for k in ours if not k.startswith("analysis.")):
        if ours[key] != theirs.get(key):
            consequence = IN_PLACE if _matches(key, DYNAMIC_SETTINGS) else REBUILD
            kind = CHANGED if key in theirs else ADDED
            out.append(Difference("settings", key, None, kind, ours[key], theirs.get(key), consequence))
    ours_analysis, theirs_analysis = analysis_components(ours), analysis_components(theirs)
    for key in sorted(set(ours_analysis) | set(theirs_analysis)):
        mine, live_value = ours_analysis.get(key), theirs_analysis.get(key)
        if mine != live_value:
            kind = ADDED if live_value is None else REMOVED if mine is None else CHANGED
            out.append(Difference("settings", key, None, kind, mine, live_value, REBUILD))
    return out


def analysis_components(flat: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``analysis.analyzer.folded.type`` etc. grouped as ``{"analysis.analyzer.folded": {"type": ...}}``."""
    components: dict[str, dict[str, Any]] = {}
    for key, value in flat.items():
        parts = key.split(".")
        if parts[0] != "analysis" or len(parts) < 4:
            continue
        components.setdefault(".".join(parts[:3]), {})[".".join(parts[3:])] = value
    return components
