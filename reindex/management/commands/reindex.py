"""``python manage.py reindex ...``: the same click commands as the ``reindex`` script."""

from __future__ import annotations

import os
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Rebuild Elasticsearch aliases with no gap in search (see 'reindex --help')."

    def run_from_argv(self, argv: list[str]) -> None:
        # click parses its own options; Django's parser would reject them.
        program = os.path.basename(argv[0])
        prog = f"{'-m django' if program == '__main__.py' else program} {argv[1]}"
        sys.exit(self._run(argv[2:], prog))

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("args", nargs="*", help="reindex command and its options")

    def handle(self, *args: str, **options: Any) -> None:
        status = self._run(list(args), "manage.py reindex")
        if status:
            raise CommandError(f"reindex exited with status {status}", returncode=status)

    def _run(self, args: list[str], prog: str) -> int:
        from reindex.cli import run

        return run(args, prog_name=prog)
