"""The ``reindex`` command line: parse options, boot Django, call the public API, print.

Exit statuses: 0 success; 1 a run failed and the alias was left alone; 2 usage or
configuration error; 3 skipped because another run holds the lock. When a command
runs for several aliases, the most severe wins: 2, then 1, then 3.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from reindex import errors
from reindex.cli import indexes, queue, runs, stream
from reindex.cli.group import ReindexGroup, State


@click.group(cls=ReindexGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--settings", metavar="MODULE", help="Django settings module (else $DJANGO_SETTINGS_MODULE).")
@click.option("--pythonpath", metavar="DIR", type=click.Path(file_okay=False), help="Directory to add to sys.path.")
@click.option("--es-url", metavar="URL", help="Search server URL (else $REINDEX_ES_URL, else REINDEX['HOSTS']).")
@click.option("-v", "--verbose", count=True, help="More detail; with errors, the traceback.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option(
    "--log-file",
    metavar="PATH",
    help="Append every line, time-stamped, to PATH (its directory is created); only errors go to stderr.",
)
@click.version_option(package_name="reindex")
@click.pass_context
def cli(
    ctx: click.Context,
    settings: str | None,
    pythonpath: str | None,
    es_url: str | None,
    verbose: int,
    quiet: bool,
    log_file: str | None,
) -> None:
    """Keep a Django site's Elasticsearch aliases whole: rebuild them with no gap in search.

    The options below may also follow the command's name.

    \b
    Example:
      reindex --settings mysite.settings rebuild products
    """
    from reindex.cli import diagnostics

    ctx.obj = state = State(settings, pythonpath, es_url, verbose, quiet, log_file)
    state.console.open()
    diagnostics.configure(verbose, quiet, state.console)


cli.add_command(indexes.list_command)
cli.add_command(indexes.status)
cli.add_command(indexes.diff_command)
cli.add_command(indexes.migrate_command)
cli.add_command(indexes.rollback)
cli.add_command(indexes.prune)
cli.add_command(indexes.unlock)
cli.add_command(runs.rebuild)
cli.add_command(runs.update)
cli.add_command(runs.sweep)
cli.add_command(runs.verify)
cli.add_command(queue.drain)
cli.add_command(queue.queue_group)
cli.add_command(queue.triggers_group)
cli.add_command(stream.stream)
cli.add_command(stream.slot_group)


def run(args: Sequence[str] | None = None, prog_name: str = "reindex") -> int:
    """Run the CLI and return its exit status instead of exiting."""
    try:
        status = cli.main(args=list(args) if args is not None else None, prog_name=prog_name, standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return errors.EXIT_CONFIG
    except click.exceptions.Abort:
        click.echo("reindex: aborted", err=True)
        return errors.EXIT_FAILED
    return int(status or 0)


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
