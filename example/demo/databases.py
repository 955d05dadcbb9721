"""The PostgreSQL ``DATABASES`` entry shared by the demo, test and benchmark settings."""

from __future__ import annotations

import os
from typing import Any


def postgres(name: str, **extra: Any) -> dict[str, Any]:
    """PostgreSQL at ``$PGHOST:$PGPORT`` (else 127.0.0.1:5432) as ``$PGUSER`` (else postgres), trust auth."""
    return {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("PGHOST", "127.0.0.1"),
        "PORT": os.environ.get("PGPORT", "5432"),
        "USER": os.environ.get("PGUSER", "postgres"),
        "NAME": name,
        **extra,
    }
