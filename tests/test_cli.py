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


class TestOneShapeForEveryFailure:
    def test_https_against_a_plain_http_server_says_what_is_wrong(self, db, reindex, es_url):
        run = reindex("status", url=es_url.replace("http://", "https://"))

        assert run.exit_code == 2
        [line] = run.stderr.splitlines()
        assert line.endswith(
            "TLS handshake failed: wrong version number (does the server speak plain HTTP? then use http://)"
        )

    @pytest.mark.parametrize("command", [["rebuild", "products"], ["prune", "products", "--keep", "0"]])
    def test_a_skip_because_of_the_lock_reads_the_same_in_every_command(self, catalog, reindex, es, command):
        from tests.helpers import hold_lock_as

        catalog(products=3)
        hold_lock_as(es, "products", "web2", 4242, age=5)

        run = reindex(*command)

        assert run.exit_code == 3
        [line] = run.stderr.splitlines()
        assert line.startswith("reindex: products: skipped: locked by web2:4242 since ")

    @pytest.mark.parametrize("max_errors", ["0", "1000"])
    def test_a_values_queryset_without_pk_is_a_configuration_error(self, catalog, reindex, es, settings, max_errors):
        settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.NoPkIndex"]}
        catalog(products=5)

        run = reindex("rebuild", "tiny", "--max-errors", max_errors)

        assert run.exit_code == 2
        assert run.stderr.splitlines() == ["reindex: error: a values() queryset must include 'pk'"]
        assert dict(es.indices.get(index="tiny-*")) == {}


class TestHelp:
    def test_the_global_options_may_follow_the_command(self, catalog, reindex, es_url):
        catalog(products=4)

        run = reindex("rebuild", "--es-url", es_url, "products", "-q", url=None)
        status = reindex("status", "products", f"--es-url={es_url}", "--json", url=None)

        assert (run.exit_code, run.stdout, run.stderr) == (0, "", "")
        assert json.loads(status.stdout)[0]["count"] == 4

    def test_hoisting_leaves_option_values_and_arguments_alone(self):
        from reindex.cli.group import hoist_global_options

        commands = ["rebuild", "status"]
        args = ["rebuild", "products", "--settings", "my.settings", "-vv", "--keep", "1", "--", "-q"]
        assert hoist_global_options(args, commands) == [
            "--settings", "my.settings", "-vv", "rebuild", "products", "--keep", "1", "--", "-q",
        ]  # fmt: skip
        assert hoist_global_options(["-q", "status"], commands) == ["-q", "status"]

    def test_help_shows_the_defaults_and_where_they_come_from(self):
        from click.testing import CliRunner

        text = CliRunner().invoke(cli, ["rebuild", "--help"], terminal_width=200).stdout

        assert "else REINDEX['BATCH_SIZE'], 1000)" in text
        assert "(default REINDEX['WORKERS'], 1)" in text
        assert "(default REINDEX['MAX_RETRIES'], 8)" in text

    def test_version(self):
        from click.testing import CliRunner

        import reindex

        run = CliRunner().invoke(cli, ["--version"])

        assert run.exit_code == 0 and reindex.__version__ in run.stdout

    def test_manage_py_help_shows_manage_py_examples(self, transactional_db):
        import subprocess
        import sys

        from tests.conftest import ROOT, subprocess_env

        env = subprocess_env(DJANGO_SETTINGS_MODULE="tests.settings")
        done = subprocess.run(
            [sys.executable, "manage.py", "reindex", "prune", "--help"],
            env=env, capture_output=True, text=True, cwd=ROOT / "example",
        )  # fmt: skip

        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("Usage: manage.py reindex prune [OPTIONS] NAME")
        assert "python manage.py reindex prune products --keep 1" in done.stdout
        assert "reindex --settings" not in done.stdout

    def test_the_help_says_where_the_options_are(self):
        from click.testing import CliRunner

        text = CliRunner().invoke(cli, ["--help"]).stdout

        assert "The options below may also follow the command's name." in text
        assert text.index("The options below") < text.index("Options:")

    def test_manage_py_reindex_help_shows_manage_py_examples(self, transactional_db):
        import subprocess
        import sys

        from tests.conftest import ROOT, subprocess_env

        env = subprocess_env(DJANGO_SETTINGS_MODULE="tests.settings")
        done = subprocess.run(
            [sys.executable, "manage.py", "reindex", "--help"],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT / "example",
        )

        assert done.returncode == 0, done.stderr
        assert "python manage.py reindex rebuild products" in done.stdout
        assert "reindex --settings" not in done.stdout


def test_a_drain_line_names_only_the_entries_it_could_not_simply_send():
    from reindex.cli import reporting
    from reindex.queue.draining import DrainResult

    plain = DrainResult(alias="products", definition="d", batches=1, claimed=3, indexed=3, seconds=0.25)
    assert reporting.format_drain(plain) == (
        "products: 3 entries in 1 batch: 3 indexed, 0 deleted, 0 to retry, 0 dead in 0.2s"
    )
    held = DrainResult(alias="products", definition="d", batches=2, claimed=5, released=2, lost_claims=1, seconds=1)
    assert reporting.format_drain(held).endswith(
        "in 1.0s; 2 put back (the server could not take them), 1 queued again (lease expired)"
    )
