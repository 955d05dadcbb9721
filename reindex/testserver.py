"""Run a local osmem-server (in-memory, OpenSearch-compatible) for the demo and tests.

``python -m reindex.testserver`` prints the server's URL on the first line of
stdout and serves until it is killed, or until its stdin closes when stdin is a pipe.
"""

from __future__ import annotations

import os
import signal
import stat
import sys
import threading


def main() -> None:
    try:
        from osmem_server import OsmemServer
    except ImportError:
        sys.exit("reindex.testserver needs the osmem-server package (pip install osmem-server)")
    server = OsmemServer.start(japanese=False)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(server.url, flush=True)

    def watch_stdin() -> None:
        try:
            while sys.stdin.read(1):
                pass
        except (OSError, ValueError):
            return
        done.set()

    if _stdin_is_pipe():
        threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


def _stdin_is_pipe() -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(sys.stdin.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


if __name__ == "__main__":
    main()
