"""Definitions are found in each app's ``indexes`` module and in settings."""

from __future__ import annotations

import sys
import textwrap

import pytest

from reindex import ConfigurationError, IndexDefinition
from reindex.definitions.definition import Registry, check_index_name, discover


def test_definitions_are_discovered_in_installed_apps(db):
    registry = discover()

    assert registry.names == ["categories", "products"]
    assert registry.get("products").source_models() == ["catalog.Product"]


def test_settings_can_add_definitions_by_dotted_path(settings, db):
    settings.REINDEX = {"INDEXES": ["tests.definitions.TinyIndex"]}

    assert discover().names == ["categories", "products", "tiny"]


def test_autodiscovery_can_be_turned_off(settings, db):
    settings.REINDEX = {"AUTODISCOVER": False, "INDEXES": ["tests.definitions.TinyIndex"]}

    assert discover().names == ["tiny"]


def test_two_definitions_for_one_alias_are_refused():
    class A(IndexDefinition):
        alias = "same"

    class B(IndexDefinition):
        alias = "same"

    with pytest.raises(ConfigurationError, match="alias 'same' is defined twice"):
        Registry([A(), B()])


@pytest.mark.parametrize("name", ["Products", "with space", "a/b", "_hidden", "-x", "a*", "..", "x" * 201])
def test_alias_names_that_break_elasticsearch_rules_are_refused(name):
    with pytest.raises(ConfigurationError, match="invalid alias name"):
        check_index_name(name)


@pytest.mark.parametrize("name", ["products", "shop.products", "a-b_c+1"])
def test_valid_alias_names(name):
    check_index_name(name)


def test_a_settings_path_that_does_not_exist_is_a_configuration_error(settings, db):
    settings.REINDEX = {"INDEXES": ["tests.definitions.Missing"]}

    with pytest.raises(ConfigurationError, match=r"tests\.definitions has no Missing"):
        discover()


def test_a_definition_module_with_a_syntax_error_names_the_file_and_line(settings, db, tmp_path, monkeypatch):
    (tmp_path / "broken_defs.py").write_text(
        textwrap.dedent("""\
        from reindex import IndexDefinition
        class Broken(IndexDefinition)
            alias = "broken"
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "broken_defs", raising=False)
    settings.REINDEX = {"INDEXES": ["broken_defs.Broken"]}

    with pytest.raises(ConfigurationError, match=r"cannot import broken_defs: .*broken_defs.py, line 2"):
        discover()


def test_elasticsearch_dsl_mappings_are_accepted():
    dsl = pytest.importorskip("elasticsearch.dsl")

    class DslIndex(IndexDefinition):
        alias = "dsl"
        mappings = dsl.Mapping()
        mappings.field("title", "text")

    assert DslIndex().get_mappings() == {"properties": {"title": {"type": "text"}}}
