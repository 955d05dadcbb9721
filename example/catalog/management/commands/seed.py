"""``python manage.py seed``: fill the catalog with generated rows."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from catalog.seed import date_back, generate


class Command(BaseCommand):
    help = "Fill the catalog with deterministic generated rows, e.g. `manage.py seed --products 100000 --flush`."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--products", type=int, default=1000, help="Products to create (default 1000).")
        parser.add_argument("--categories", type=int, default=12, help="Categories to create (default 12).")
        parser.add_argument("--sellers", type=int, default=40, help="Sellers to create (default 40).")
        parser.add_argument("--seed", type=int, default=42, help="Random seed (default 42).")
        parser.add_argument("--flush", action="store_true", help="Delete every catalog row first.")
        parser.add_argument(
            "--days-ago", type=float, default=0, help="Date every row's updated_at back this many days (default 0)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = generate(
                products=options["products"],
                categories=options["categories"],
                sellers=options["sellers"],
                seed=options["seed"],
                flush=options["flush"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if options["days_ago"]:
            date_back(days=options["days_ago"])
        self.stdout.write(str(result))
