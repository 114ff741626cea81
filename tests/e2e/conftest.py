"""A real ILP Gateway behind gunicorn on a loopback port, once per database kind.

The database is prepared the way an operator would (``ilp db upgrade``), then
gunicorn serves ``server:create_app()``.  PostgreSQL gets a fresh database that
is dropped afterwards; when it is unreachable the tests fail rather than skip.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import fresh_postgres_database

ROOT = Path(__file__).resolve().parents[2]
ILP = Path(sys.executable).with_name("ilp")
STARTUP_SECONDS = 20


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(database_url: str, base_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ILP_")}
    env.update(ILP_DATABASE_URL=database_url, ILP_BASE_URL=base_url)
    env.update(ILP_AUTH="off", ILP_RATE_LIMIT="0")  # security has its own e2e test
    # The payloads here are minimal, not ILP data (tests/conftest.py: NO_PROFILE_ENFORCEMENT).
    env.update(ILP_ENFORCE_PROFILES="", ILP_ENFORCE_CLAIMED_PROFILES="false")
    return env


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request, tmp_path_factory):
    """An empty database of each kind (the schema is left to ``ilp db upgrade``)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('e2e-sqlite') / 'ilp.sqlite3'}"
        return
    with fresh_postgres_database("ilp_e2e", migrated=False) as url:
        yield url


@pytest.fixture(scope="module")
def fhir_base(database_url, tmp_path_factory):
    """The FHIR base URL of a gunicorn server (2 workers) on ``database_url``."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    env = _environment(database_url, base)
    upgrade = subprocess.run(
        [str(ILP), "db", "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert upgrade.returncode == 0, f"ilp db upgrade failed:\n{upgrade.stderr}"

    log_path = tmp_path_factory.mktemp("gunicorn") / "stderr.log"
    with gunicorn(env, port, log_path, f"{base}/metadata"):
        yield base


@contextlib.contextmanager
def gunicorn(
    env: dict[str, str], port: int, log_path: Path, ready_url: str, *, stdout_to_log: bool = False
) -> Iterator[subprocess.Popen[bytes]]:
    """``server:create_app()`` under gunicorn (2 workers) on ``port``, ready when ``ready_url``
    answers 200 (its stderr in ``log_path`` otherwise); stopped afterwards."""
    with log_path.open("wb") as log:
        command = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"]
        # Without --no-control-socket every gunicorn of this user shares ~/.gunicorn/gunicorn.ctl.
        command += ["--workers", "2", "--no-control-socket", "server:create_app()"]
        stdout = log if stdout_to_log else subprocess.DEVNULL
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stdout, stderr=log)
    try:
        _wait_until_ready(process, ready_url, log_path)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_ready(process: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.1)
    state = "exited" if process.poll() is not None else f"no 200 within {STARTUP_SECONDS} s"
    pytest.fail(f"gunicorn did not serve {url} ({state}); stderr:\n{log_path.read_text()}")
