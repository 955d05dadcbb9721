"""Exit 0 when the test MariaDB (or MySQL) server accepts connections, 1 otherwise."""

from __future__ import annotations

import os
import sys

try:
    import pymysql
except ImportError:
    sys.exit(1)

try:
    pymysql.connect(
        host=os.environ.get("MYSQL_HOST", "127.0.0.1"),
        port=int(os.environ.get("MYSQL_TCP_PORT", "3306")),
        user=os.environ.get("MYSQL_USER", "root"),
        password=os.environ.get("MYSQL_PWD", ""),
        connect_timeout=3,
    ).close()
except pymysql.Error:
    sys.exit(1)
