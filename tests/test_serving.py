"""Serving for real: bin/serve runs gunicorn with two workers; with Redis they share one cache, and a Redis
outage degrades to querying, never to errors. (Skipped when no Redis answers on 127.0.0.1:6379, or
COCKPIT_TEST_REDIS_URL; failed instead with COCKPIT_TEST_REQUIRE_REDIS=1, as .ci/run sets.)"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from .browser import free_port
from .conftest import WAREHOUSE
from .helpers import bearer

pytestmark = pytest.mark.engine_free   # its own files and server URLs: one run of CI is enough

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("COCKPIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
QUERY = "/api/v1/indicators?ids=dining.cold_chain,service.csi,energy.total_kgce&school=SH-U01"


def redis_or_skip():
    redis = pytest.importorskip("redis")
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no Redis here
        if os.environ.get("COCKPIT_TEST_REQUIRE_REDIS") == "1":   # .ci/run: CI machines have Redis
            pytest.fail(f"COCKPIT_TEST_REQUIRE_REDIS=1 but no Redis at {REDIS_URL}: {exc}")
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    return client


class Server:
    def __init__(self, tmp_path: Path, redis_url: str):
        self.port = free_port()
        self.auth = bearer()
        self.warehouse = tmp_path / "serve.duckdb"
        shutil.copy(WAREHOUSE, self.warehouse)
        self.log = tmp_path / "gunicorn.log"
        env = dict(os.environ, COCKPIT_WAREHOUSE_URL=f"duckdb:///{self.warehouse}", COCKPIT_PORT=str(self.port),
                   COCKPIT_HOST="127.0.0.1", COCKPIT_WORKERS="2", COCKPIT_CACHE_REDIS_URL=redis_url,
                   HOME=str(tmp_path),
                   COCKPIT_LOG_LEVEL="DEBUG", GUNICORN_CMD_ARGS="--access-logformat '%(p)s %(s)s %(U)s'")
        self.proc = subprocess.Popen([str(ROOT / "bin" / "serve")], cwd=ROOT, env=env, stdout=self.log.open("w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if requests.get(self.url("/api/v1/health"), timeout=2).status_code in (200, 503):
                    return
            except requests.RequestException:
                time.sleep(0.3)
        self.stop()
        raise AssertionError("gunicorn did not start:\n" + self.log.read_text()[-3000:])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str):
        # a new connection each time, so requests spread over the workers; the workers share the session's
        # app database, so an API token of its assessor opens the API
        return requests.get(self.url(path), timeout=30, headers={"Connection": "close", **self.auth})

    def pids_serving(self, path: str) -> set[str]:
        return {line.split()[0] for line in self.log.read_text().splitlines()
                if line.endswith(path.split("?")[0]) and " 200 " in line}

    def misses(self) -> list[str]:
        """Query-cache misses logged so far, as "pid function" (app log format: date time pid LEVEL …)."""
        return [f"{line.split()[2]} {line.rsplit(' ', 1)[-1]}" for line in self.log.read_text().splitlines()
                if "cache miss:" in line]

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


def test_a_missing_redis_skips_unless_required(monkeypatch):
    """bin/test alone skips the Redis tests where no Redis answers; .ci/run (COCKPIT_TEST_REQUIRE_REDIS=1) fails."""
    monkeypatch.setitem(globals(), "REDIS_URL", "redis://127.0.0.1:1/0")   # nothing listens there
    monkeypatch.delenv("COCKPIT_TEST_REQUIRE_REDIS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Redis at redis://127.0.0.1:1/0"):
        redis_or_skip()
    monkeypatch.setenv("COCKPIT_TEST_REQUIRE_REDIS", "1")
    with pytest.raises(pytest.fail.Exception, match="COCKPIT_TEST_REQUIRE_REDIS=1 but no Redis"):
        redis_or_skip()


def test_two_workers_share_the_redis_cache(tmp_path):
    client = redis_or_skip()
    client.flushdb()
    server = Server(tmp_path, REDIS_URL)
    try:
        first = server.get(QUERY)
        assert first.status_code == 200
        expected = first.json()["indicators"]
        assert client.dbsize() > 0
        computed = server.misses()
        assert any(m.endswith("dining.cold_chain_totals") for m in computed)
        # Sequential requests may all land on one worker (the kernel picks the accepting process): send them
        # four at a time, so that a busy worker leaves the next connection to the other one.
        with ThreadPoolExecutor(4) as pool:
            for _ in range(50):
                for r in pool.map(lambda _: server.get(QUERY), range(4)):
                    assert r.status_code == 200, r.text
                    assert r.json()["indicators"] == expected
                if len(server.pids_serving("/api/v1/indicators")) == 2:
                    break
        assert len(server.pids_serving("/api/v1/indicators")) == 2, server.log.read_text()[-2000:]
        assert server.misses() == computed      # the other worker answered from the shared cache
    finally:
        server.stop()
        client.flushdb()


def test_redis_outage_degrades_to_querying(tmp_path):
    redis_or_skip()
    server = Server(tmp_path, "redis://127.0.0.1:1/0")   # nothing listens there
    try:
        for _ in range(4):
            r = server.get(QUERY)
            assert r.status_code == 200, r.text
            assert all(i["value"] is not None for i in r.json()["indicators"])
        assert server.get("/").status_code == 200
        assert requests.get(server.url("/login"), timeout=30).status_code == 200   # the login needs no cache
    finally:
        server.stop()
