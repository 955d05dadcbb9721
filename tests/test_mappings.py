"""Normalising and comparing definitions: whatever shape the server echoes, no false differences."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reindex.definitions.mappings import (
    compare_mappings,
    compare_settings,
    field_paths,
    fingerprint,
    normalise_settings,
)
from reindex.server import indexes
from reindex.server.drift import live_definition

# -- the server's shapes, by hand ---------------------------------------------------


def test_settings_compare_equal_whatever_their_spelling():
    declared = {"index": {"number_of_shards": 1, "analysis": {"analyzer": {"a": {"type": "standard"}}}}}
    live = {
        "index.number_of_shards": "1",
        "index.analysis.analyzer.a.type": "standard",
        "index.uuid": "x1",
        "index.creation_date": "1795737198341",
        "index.provided_name": "products-1",
        "index.version.created": "137297827",
    }

    assert compare_settings(declared, live) == []
    assert normalise_settings(declared) == normalise_settings({"number_of_shards": "1", **live})


def test_mappings_compare_equal_without_implicit_object_defaults_and_spelling():
    declared = {
        "dynamic": True,
        "_source": {"enabled": True},
        "properties": {
            "o": {"type": "object", "properties": {"a": {"type": "keyword", "index": True, "copy_to": "all"}}},
            "e": {"properties": {}},
            "p": {"type": "scaled_float", "scaling_factor": 100},
        },
    }
    live = {
        "dynamic": "true",
        "_meta": {"reindex": {"owner": "reindex"}},
        "properties": {
            "o": {"properties": {"a": {"type": "keyword", "copy_to": ["all"]}}},
            "e": {"type": "object"},
            "p": {"type": "scaled_float", "scaling_factor": 100.0},
        },
    }

    assert compare_mappings(declared, live) == []


def test_the_fingerprint_ignores_spelling_and_sees_changes():
    a = fingerprint({"number_of_shards": 1}, {"properties": {"x": {"type": "keyword"}, "y": {"type": "long"}}})
    b = fingerprint({"index.number_of_shards": "1"}, {"properties": {"y": {"type": "long"}, "x": {"type": "keyword"}}})
    c = fingerprint({"number_of_shards": 1}, {"properties": {"x": {"type": "text"}, "y": {"type": "long"}}})

    assert a == b != c


def test_an_analyzer_removed_from_the_code_is_a_difference():
    live = {"index.analysis.analyzer.old.type": "standard", "index.analysis.analyzer.kept.type": "simple"}

    [difference] = compare_settings({"analysis": {"analyzer": {"kept": {"type": "simple"}}}}, live)

    assert (difference.path, difference.kind, difference.consequence) == ("analysis.analyzer.old", "removed", "rebuild")


# -- random mappings against the server -----------------------------------------------

NAMES = st.text(alphabet="abcdefgh", min_size=1, max_size=4)
KEYWORD = st.fixed_dictionaries(
    {"type": st.just("keyword")},
    optional={"ignore_above": st.integers(1, 500), "doc_values": st.booleans(), "normalizer": st.just("lowercase")},
)
TEXT = st.fixed_dictionaries(
    {"type": st.just("text")},
    optional={
        "analyzer": st.sampled_from(["standard", "simple", "whitespace"]),
        "search_analyzer": st.sampled_from(["standard", "simple"]),
        "index": st.booleans(),
        "fields": st.just({"raw": {"type": "keyword"}}),
    },
)
SCALAR = st.fixed_dictionaries(
    {"type": st.sampled_from(["integer", "long", "float", "double", "boolean"])},
    optional={"store": st.booleans(), "index": st.booleans()},
)
DATE_FORMATS = st.sampled_from(["yyyy-MM-dd", "epoch_millis"])
DATE = st.fixed_dictionaries({"type": st.just("date")}, optional={"format": DATE_FORMATS})
SCALED = st.fixed_dictionaries({"type": st.just("scaled_float"), "scaling_factor": st.sampled_from([10, 100.0, 0.5])})
LEAF = st.one_of(KEYWORD, TEXT, SCALAR, DATE, SCALED)


def containers(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    properties = st.dictionaries(NAMES, children, min_size=1, max_size=3)
    return st.one_of(
        st.builds(lambda p: {"properties": p}, properties),
        st.builds(lambda t, p: {"type": t, "properties": p}, st.sampled_from(["object", "nested"]), properties),
        st.builds(lambda d, p: {"dynamic": d, "properties": p}, st.sampled_from([True, False, "strict"]), properties),
    )


FIELD = st.recursive(LEAF, containers, max_leaves=6)
MAPPINGS = st.fixed_dictionaries(
    {"properties": st.dictionaries(NAMES, FIELD, min_size=1, max_size=4)},
    optional={"dynamic": st.sampled_from([True, False, "strict", "true"]), "_source": st.just({"enabled": True})},
)
SETTINGS = st.fixed_dictionaries(
    {},
    optional={
        "number_of_shards": st.integers(1, 3),
        "number_of_replicas": st.sampled_from([0, 1, "2"]),
        "refresh_interval": st.sampled_from(["1s", "30s", "-1"]),
        "max_result_window": st.integers(100, 50000),
    },
)

_names = itertools.count()
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def build(es: Any, index_settings: dict[str, Any], mappings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create an index from the definition, as the tool does, and read back what the server holds."""
    name = f"property-{next(_names)}"
    indexes.create_index(es, name, copy.deepcopy(index_settings), copy.deepcopy(mappings))
    return live_definition(es, name)


@PROPERTY
@given(mappings=MAPPINGS, index_settings=SETTINGS)
def test_an_index_created_from_a_definition_compares_equal_to_it(es, mappings, index_settings):
    live_mappings, live_settings = build(es, index_settings, mappings)

    assert compare_mappings(mappings, live_mappings, field_paths(mappings)) == []
    assert compare_settings(index_settings, live_settings) == []


def fields_in(properties: dict[str, Any], prefix: str = "") -> Iterator[tuple[dict[str, Any], str, str]]:
    """``(the properties dict holding it, name, path)`` of every field, depth first."""
    for name, field in properties.items():
        yield properties, name, f"{prefix}{name}"
        yield from fields_in(field.get("properties", {}), f"{prefix}{name}.")


OTHER_TYPE = {"keyword": "long", "text": "keyword", "date": "keyword", "scaled_float": "double"}


@PROPERTY
@given(mappings=MAPPINGS, data=st.data())
def test_any_single_change_to_the_code_is_detected(es, mappings, data):
    live_mappings, _ = build(es, {}, mappings)
    changed = copy.deepcopy(mappings)
    holder, name, path = data.draw(st.sampled_from(list(fields_in(changed["properties"]))))
    mutation = data.draw(st.sampled_from(["add", "remove", "retype", "dynamic"]))
    if mutation == "add":
        holder[f"{name}new"] = {"type": "keyword"}
        expected = (f"{path}new", None, "added")
    elif mutation == "remove":
        del holder[name]
        expected = (path, None, "removed")
    elif mutation == "retype":
        old = holder[name].get("type", "object")
        holder[name] = {"type": OTHER_TYPE.get(old, "keyword")}
        expected = (path, "type", "changed")
    else:
        before = str(changed.get("dynamic", "true")).lower()
        changed["dynamic"] = "strict" if before != "strict" else "false"
        expected = ("", "dynamic", "changed")

    differences = compare_mappings(changed, live_mappings, field_paths(mappings))

    assert [(d.path, d.parameter, d.kind) for d in differences] == [expected]


# -- definitions that write out the server's defaults -----------------------------------

#: Each parameter's documented default, per field type (Elasticsearch's mapping reference,
#: limited to what osmem-server accepts); required parameters are in ``REQUIRED``.
DOCUMENTED_DEFAULTS: dict[str, dict[str, Any]] = {
    "text": {
        "norms": True,
        "index_options": "positions",
        "eager_global_ordinals": False,
        "fielddata": False,
        "position_increment_gap": 100,
        "index_phrases": False,
        "similarity": "BM25",
        "term_vector": "no",
        "store": False,
        "index": True,
    },
    "keyword": {
        "norms": False,
        "index_options": "docs",
        "eager_global_ordinals": False,
        "split_queries_on_whitespace": False,
        "ignore_above": 2147483647,
        "similarity": "BM25",
        "doc_values": True,
        "store": False,
        "index": True,
    },
    **{
        number: {"coerce": True, "ignore_malformed": False, "doc_values": True, "index": True, "store": False}
        for number in ["long", "integer", "double", "float", "scaled_float"]
    },
    "date": {"format": "strict_date_optional_time||epoch_millis", "locale": "ROOT", "ignore_malformed": False},
    "date_nanos": {"format": "strict_date_optional_time_nanos||epoch_millis", "doc_values": True, "store": False},
    "boolean": {"doc_values": True, "index": True, "store": False},
    "ip": {"ignore_malformed": False, "doc_values": True, "index": True, "store": False},
    "geo_point": {"ignore_malformed": False, "ignore_z_value": True},
    "completion": {
        "analyzer": "simple",
        "search_analyzer": "simple",
        "preserve_separators": True,
        "preserve_position_increments": True,
        "max_input_length": 50,
    },
    "search_as_you_type": {"max_shingle_size": 3, "index": True, "store": False, "similarity": "BM25"},
    "binary": {"doc_values": False, "store": False},
    "wildcard": {"ignore_above": 2147483647},
    "integer_range": {"coerce": True, "index": True, "store": False},
    "rank_feature": {"positive_score_impact": True},
}
REQUIRED: dict[str, dict[str, Any]] = {"scaled_float": {"scaling_factor": 100}}
CONTAINER_DEFAULTS = {"object": {"enabled": True}, "nested": {"include_in_parent": False, "include_in_root": False}}
ROOT_SPELLED = {
    "dynamic": True,
    "date_detection": True,
    "numeric_detection": False,
    "_source": {"enabled": True},
    "_routing": {"required": False},
}


def spellings(value: Any) -> st.SearchStrategy[Any]:
    """The ways code may write ``value``: ``False`` or ``"false"``, ``100``, ``100.0`` or ``"100"``."""
    if isinstance(value, bool):
        return st.sampled_from([value, str(value).lower()])
    if isinstance(value, int):
        return st.sampled_from([value, float(value), str(value)])
    if isinstance(value, dict):
        return st.fixed_dictionaries({k: spellings(v) for k, v in value.items()})
    return st.just(value)


def written_out(defaults: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Any of ``defaults``, each in any spelling."""
    return st.fixed_dictionaries({}, optional={k: spellings(v) for k, v in defaults.items()})


SPELLED_LEAF = st.sampled_from(sorted(DOCUMENTED_DEFAULTS)).flatmap(
    lambda t: st.builds(lambda given: {"type": t, **REQUIRED.get(t, {}), **given}, written_out(DOCUMENTED_DEFAULTS[t]))
)
SPELLED_TEXT_WITH_RAW = st.builds(
    lambda text, raw: {**text, "type": "text", "fields": {"raw": {**raw, "type": "keyword"}}},
    written_out(DOCUMENTED_DEFAULTS["text"]),
    written_out(DOCUMENTED_DEFAULTS["keyword"]),
)


def spelled_containers(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    properties = st.dictionaries(NAMES, children, min_size=1, max_size=3)
    return st.sampled_from(sorted(CONTAINER_DEFAULTS)).flatmap(
        lambda t: st.builds(
            lambda given, p: {"type": t, **given, "properties": p}, written_out(CONTAINER_DEFAULTS[t]), properties
        )
    )


SPELLED_MAPPINGS = st.builds(
    lambda root, properties: {**root, "properties": properties},
    written_out(ROOT_SPELLED),
    st.dictionaries(
        NAMES,
        st.recursive(st.one_of(SPELLED_LEAF, SPELLED_TEXT_WITH_RAW), spelled_containers, max_leaves=6),
        min_size=1,
    ),
)


@PROPERTY
@given(mappings=SPELLED_MAPPINGS)
def test_a_definition_that_writes_out_defaults_compares_equal_to_the_index_built_from_it(es, mappings):
    live_mappings, _ = build(es, {}, mappings)

    assert compare_mappings(mappings, live_mappings, field_paths(mappings)) == []


@pytest.mark.parametrize(
    "field, parameter, value",
    [
        ({"type": "text"}, "index_options", "docs"),  # keyword's default
        ({"type": "keyword"}, "index_options", "positions"),  # text's default
        ({"type": "keyword"}, "norms", True),
        ({"type": "text"}, "norms", False),
        ({"type": "date_nanos"}, "format", "strict_date_optional_time||epoch_millis"),  # date's default
        ({"type": "join", "relations": {"q": "a"}}, "eager_global_ordinals", False),  # on by default for join
        ({"type": "binary"}, "doc_values", True),  # off by default for binary
        ({"type": "geo_shape"}, "coerce", True),  # off for shapes, on for numbers
        ({"type": "completion"}, "analyzer", "standard"),  # simple by default for completion
    ],
)
def test_a_default_of_another_field_type_is_a_difference(field, parameter, value):
    declared = {"properties": {"f": {**field, parameter: value}}}
    live = {"properties": {"f": field}}

    [difference] = compare_mappings(declared, live)
    [reverse] = compare_mappings(live, declared)

    assert (difference.path, difference.parameter, difference.live) == ("f", parameter, None)
    assert (reverse.path, reverse.parameter, reverse.declared) == ("f", parameter, None)


def test_the_search_quote_analyzer_defaults_to_the_search_analyzer():
    live = {"properties": {"t": {"type": "text", "analyzer": "simple", "search_analyzer": "standard"}}}
    same = {"properties": {"t": {**live["properties"]["t"], "search_quote_analyzer": "standard"}}}
    other = {"properties": {"t": {**live["properties"]["t"], "search_quote_analyzer": "simple"}}}

    assert compare_mappings(same, live) == []
    assert [d.parameter for d in compare_mappings(other, live)] == ["search_quote_analyzer"]


@pytest.mark.parametrize("value, live", [(1, "1"), (1.0, "1"), ("1", "1"), (True, "true"), (0.5, "0.5")])
def test_scalars_compare_in_any_spelling(value, live):
    assert compare_settings({"max_ngram_diff": value}, {"index.max_ngram_diff": live}) == []
    assert compare_settings({"max_ngram_diff": value}, {"index.max_ngram_diff": "2"}) != []
