"""The PostgreSQL and MariaDB ``DATABASES`` entries shared by the demo, test and benchmark settings."""

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


def mariadb(name: str, **extra: Any) -> dict[str, Any]:
    """MariaDB (or MySQL) at ``$MYSQL_HOST:$MYSQL_TCP_PORT`` (else 127.0.0.1:3306) as root, no password.

    Through PyMySQL, a pure-Python driver standing in for mysqlclient (which needs a compiler).
    """
    import pymysql

    pymysql.install_as_MySQLdb()
    return {
        "ENGINE": "django.db.backends.mysql",
        "HOST": os.environ.get("MYSQL_HOST", "127.0.0.1"),
        "PORT": os.environ.get("MYSQL_TCP_PORT", "3306"),
        "USER": os.environ.get("MYSQL_USER", "root"),
        "PASSWORD": os.environ.get("MYSQL_PWD", ""),
        "NAME": name,
        "OPTIONS": {"charset": "utf8mb4"},
        **extra,
    }
