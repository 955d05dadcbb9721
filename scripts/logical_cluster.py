"""A private PostgreSQL cluster with ``wal_level = logical``, for the tests of ``reindex stream``.

The machine's own server (127.0.0.1:5432) is never touched: this starts a throwaway cluster in
a fresh temporary directory, on a free port of 127.0.0.1, and removes it at the end::

    python scripts/logical_cluster.py run -- .venv/bin/pytest -m stream

runs the command with ``REINDEX_TEST_DB=logical``, ``REINDEX_LOGICAL_PORT`` (the port),
``REINDEX_LOGICAL_DATA`` (the data directory) and ``REINDEX_LOGICAL_CTL`` (the ``pg_ctl``
command line, as the user that owns the cluster), and exits with the command's status. From
Python (the tests' ``logical_cluster`` fixture rebuilds the handle from that environment)::

    with LogicalCluster.start() as cluster:     # stopped and removed on leaving
        cluster.restart()                       # pg_ctl restart -m fast: same port, same data

The cluster trusts every connection from 127.0.0.1 (role ``postgres``, a superuser) and holds a
database ``test``. PostgreSQL refuses to run as root, so under root (CI, the dev container)
``initdb`` and ``pg_ctl`` run as the ``postgres`` OS user through ``runuser``, in a directory
handed to it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

#: The OS user that runs the cluster when this runs as root.
OS_USER = "postgres"

#: What ``reindex stream`` needs of the server, and what makes a test cluster quick.
SETTINGS = {
    "wal_level": "logical",
    "max_replication_slots": "20",
    "max_wal_senders": "20",
    # Nothing to keep after the run. synchronous_commit stays on: logical decoding reads the log
    # only as far as it is flushed, and a test must see a commit as soon as it returns.
    "fsync": "off",
    "full_page_writes": "off",
    "listen_addresses": "'127.0.0.1'",
}

HBA = """\
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  trust
"""


class ClusterError(Exception):
    """The cluster did not start, restart or stop; the message carries PostgreSQL's own log."""


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def as_cluster_owner() -> list[str]:
    """The prefix that runs a command as the cluster's owner: ``runuser`` under root, nothing otherwise."""
    return ["runuser", "-u", OS_USER, "--"] if os.geteuid() == 0 else []


def postgres_binary(name: str) -> str:
    """``initdb`` or ``pg_ctl`` from the PATH (ClusterError when PostgreSQL's server is not installed)."""
    found = shutil.which(name)
    if found is None:
        raise ClusterError(f"{name} is not on the PATH: install PostgreSQL's server binaries")
    return found


@dataclass
class LogicalCluster:
    """A running private cluster: its port, its ``pg_ctl`` command line and its directory."""

    port: int
    root: Path
    ctl: list[str]

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    @classmethod
    def start(cls) -> LogicalCluster:
        """initdb a fresh cluster in a new temporary directory, start it, create the database ``test``."""
        root = Path(tempfile.mkdtemp(prefix="reindex-logical-"))
        cluster = cls(port=free_port(), root=root, ctl=[*as_cluster_owner(), postgres_binary("pg_ctl")])
        try:
            cluster._initdb()
            cluster._pg_ctl("start", "-w", "-l", str(cluster.log))
            cluster._create_database("test")
        except BaseException:
            cluster.stop()
            raise
        return cluster

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> LogicalCluster:
        """The handle of the cluster that ``run`` started, from the environment it gave the command."""
        missing = [
            name
            for name in ("REINDEX_LOGICAL_PORT", "REINDEX_LOGICAL_DATA", "REINDEX_LOGICAL_CTL")
            if not env.get(name)
        ]
        if missing:
            raise ClusterError(
                f"{', '.join(missing)} not set: run under `python scripts/logical_cluster.py run -- ...`"
            )
        data = Path(env["REINDEX_LOGICAL_DATA"])
        return cls(port=int(env["REINDEX_LOGICAL_PORT"]), root=data.parent, ctl=shlex.split(env["REINDEX_LOGICAL_CTL"]))

    def env(self) -> dict[str, str]:
        """What a command run against this cluster is told (see the module's docstring)."""
        return {
            "REINDEX_TEST_DB": "logical",
            "REINDEX_LOGICAL_PORT": str(self.port),
            "REINDEX_LOGICAL_DATA": str(self.data),
            "REINDEX_LOGICAL_CTL": shlex.join(self.ctl),
        }

    def restart(self, down: float = 0) -> None:
        """``pg_ctl restart -m fast``: every connection is cut; the cluster comes back on the same port and data.

        ``down``: seconds it stays stopped in between (connections refused), as a longer outage.
        """
        if not down:
            self._pg_ctl("restart", "-m", "fast", "-w", "-l", str(self.log))
            return
        self._pg_ctl("stop", "-m", "fast", "-w")
        time.sleep(down)
        self._pg_ctl("start", "-w", "-l", str(self.log))

    def stop(self) -> None:
        """Stop the server (if it runs) and remove the cluster's directory."""
        try:
            if (self.data / "postmaster.pid").exists():
                self._pg_ctl("stop", "-m", "fast", "-w")
        except ClusterError:
            self._pg_ctl("stop", "-m", "immediate", "-w", check=False)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LogicalCluster:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _initdb(self) -> None:
        owner = as_cluster_owner()
        if owner:
            shutil.chown(self.root, user=OS_USER, group=OS_USER)
        (self.root / "socket").mkdir()
        if owner:
            shutil.chown(self.root / "socket", user=OS_USER, group=OS_USER)
        initdb = [
            *owner,
            postgres_binary("initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
        ]
        self._run([*initdb, "--no-sync", "--no-instructions"], "initdb")
        settings = {**SETTINGS, "port": str(self.port), "unix_socket_directories": f"'{self.root / 'socket'}'"}
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# reindex's logical-decoding test cluster (scripts/logical_cluster.py)\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        (self.data / "pg_hba.conf").write_text(HBA)

    def _create_database(self, name: str) -> None:
        import psycopg

        try:
            with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres") as conn:
                conn.autocommit = True
                conn.execute(f'CREATE DATABASE "{name}"')
        except psycopg.Error as error:
            raise ClusterError(f"cannot create the database {name} on 127.0.0.1:{self.port}: {error}") from error

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        self._run([*self.ctl, *args, "-D", str(self.data)], f"pg_ctl {args[0]}", check=check)

    def _run(self, command: Sequence[str], what: str, check: bool = True) -> None:
        # The owner may not be allowed into the caller's working directory: run from the cluster's own.
        try:
            done = subprocess.run(command, cwd=self.root, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired as error:
            raise ClusterError(f"{what} did not finish in {error.timeout:.0f} s") from error
        if done.returncode and check:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise ClusterError(f"{what} exited {done.returncode}: {done.stderr.strip() or done.stdout.strip()}\n{log}")


def run(command: Sequence[str]) -> int:
    """Start a cluster, run ``command`` against it, stop and remove it; the command's exit status."""
    # SIGTERM (CI's timeout, a kill) takes the same way out as Ctrl-C: through the finally below.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    with LogicalCluster.start() as cluster:
        print(f"logical-decoding cluster on 127.0.0.1:{cluster.port} ({cluster.data})", file=sys.stderr)
        child = subprocess.Popen(command, env={**os.environ, **cluster.env()})
        try:
            status = child.wait()
        finally:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
    return status if status >= 0 else 128 - status


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    actions = parser.add_subparsers(dest="action", required=True)
    runner = actions.add_parser("run", help="start a cluster, run a command against it, remove the cluster")
    runner.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    actions.add_parser("restart", help="restart the cluster that `run` started (from REINDEX_LOGICAL_*)")
    args = parser.parse_args(argv)
    try:
        if args.action == "restart":
            LogicalCluster.from_env().restart()
            return 0
        command = args.command[1:] if args.command[:1] == ["--"] else args.command
        if not command:
            parser.error("run needs a command: run -- CMD ARGS...")
        return run(command)
    except ClusterError as error:
        print(f"logical_cluster: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
