"""The ``reindex`` command line: ``main()`` is the console script, ``cli`` the click group."""

from __future__ import annotations

from reindex.cli.main import cli, main, run

__all__ = ["cli", "main", "run"]
