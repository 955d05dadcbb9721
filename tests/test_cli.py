"""The command line as an operator meets it: listing, status, exit codes, quiet output."""

from __future__ import annotations

import json

import click
import pytest

from reindex.cli import cli


def test_list_shows_each_alias_with_the_models_it_reads(db, reindex):
    run = reindex("list", url=None)

    assert run.exit_code == 0
    lines = run.stdout.splitlines()
    assert any(line.startswith("products\tcatalog.Product") for line in lines)
    assert any(line.startswith("categories\tcatalog.Category") for line in lines)


def test_list_json(db, reindex):
    run = reindex("list", "--json", url=None)

    rows = {row["alias"]: row for row in json.loads(run.stdout)}
    assert rows["products"]["definition"] == "catalog.indexes.ProductIndex"


def test_an_unknown_name_is_a_usage_error_that_lists_the_known_ones(db, reindex):
    run = reindex("rebuild", "prodcuts")

    assert run.exit_code == 2
    assert run.stderr.strip() == "reindex: error: unknown index prodcuts (known: categories, products)"
    assert run.stdout == ""


def test_an_unreachable_server_is_a_configuration_error(db, reindex):
    run = reindex("rebuild", "products", url="http://127.0.0.1:1")

    assert run.exit_code == 2
    assert run.stderr.startswith("reindex: error: cannot reach the search server at http://127.0.0.1:1")
    assert len(run.stderr.strip().splitlines()) == 1


def test_verbose_adds_the_traceback(db, reindex):
    run = reindex("-v", "rebuild", "products", url="http://127.0.0.1:1")

    assert run.exit_code == 2
    assert "Traceback" in run.stderr


def test_status_of_an_alias_never_built(db, reindex, es_url):
    run = reindex("status", "products")

    assert run.exit_code == 0
    server, alias = run.stdout.splitlines()
    assert server.startswith("server: ") and server.endswith(f" at {es_url}")  # e.g. "opensearch 3.8.0"
    assert alias == "products: not built"


def test_status_shows_live_index_count_and_kept_indexes(catalog, reindex, es):
    catalog(products=9)
    reindex("rebuild", "products", "--keep", "1")
    reindex("rebuild", "products", "--keep", "1")

    run = reindex("status", "products", "--json")

    [status] = json.loads(run.stdout)
    assert status["built"] is True
    assert status["count"] == 9
    live, kept = [i for i in status["indexes"] if i["live"]], [i for i in status["indexes"] if not i["live"]]
    assert [i["name"] for i in live] == status["live"]
    assert len(kept) == 1 and kept[0]["count"] == 9 and kept[0]["owned"]
    text = reindex("status", "products").stdout
    assert f"products: live {status['live'][0]} (9 documents)" in text
    assert "kept" in text


def test_without_a_terminal_only_the_summary_is_printed(catalog, reindex):
    catalog(products=5)

    run = reindex("rebuild", "products")

    assert run.exit_code == 0
    assert len(run.stdout.splitlines()) == 1
    assert run.stderr == ""  # no progress bar off a terminal


def test_quiet_prints_nothing_on_success(catalog, reindex):
    catalog(products=5)

    run = reindex("-q", "rebuild", "products")

    assert (run.exit_code, run.stdout, run.stderr) == (0, "", "")


def test_usage_errors_exit_2(reindex):
    run = reindex("rebuild", "--batch-size", "0", url=None)

    assert run.exit_code == 2
    assert "batch-size" in run.stderr


def all_commands(group: click.Group) -> list[tuple[str, click.Command]]:
    return [(name, group.commands[name]) for name in sorted(group.commands)]


@pytest.mark.parametrize("name, command", all_commands(cli))
def test_every_command_has_help_with_an_example(name, command):
    assert command.help and "Example:" in command.help, name
    assert f"reindex --settings mysite.settings {name}" in command.help
