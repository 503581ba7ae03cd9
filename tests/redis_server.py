"""A real, throwaway Redis for the cluster tests: Debian's `redis-server` on a free loopback port.

No Docker and no fakeredis: Celery's broker behaviour (unacked messages, visibility timeout,
Lua scripts) only shows against the real server. `.ci/run` (via `make test`) installs the
binary; where it is missing the tests skip and say why.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_server(
    startup_timeout: float = 10.0,
    password: str | None = None,
    port: int | None = None,
    persist_in: str | None = None,
) -> Iterator[str]:
    """Start `redis-server` without persistence on 127.0.0.1 (on `port`, to restart one);
    yields its URL (with the password, when one is required: `--requirepass`, as the compose
    file runs it); kills it after. With `persist_in` (a directory, kept) it persists as the
    compose file runs it (append-only file) and is stopped as `docker compose restart` does
    (SIGTERM), so that the next one started there has its data."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; make test does)")
    port = port or free_port()
    workdir = persist_in or tempfile.mkdtemp(prefix="ernte-redis-")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes" if persist_in else "no",
            "--daemonize",
            "no",
            "--dir",
            workdir,
            "--maxmemory-policy",
            "noeviction",
            *(["--requirepass", password] if password else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://{f':{password}@' if password else ''}127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + startup_timeout
        while True:
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {port} did not answer PING")
            time.sleep(0.05)
        client.close()
        yield url
    finally:
        if persist_in:
            process.terminate()
        else:
            process.kill()
        process.wait(timeout=10)
        if not persist_in:
            shutil.rmtree(workdir, ignore_errors=True)
