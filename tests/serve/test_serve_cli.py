"""``zhiku serve`` as a real process: it starts on a free loopback port, becomes ready, answers with
keys and writes one JSON log line per request carrying the request id."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from http_ready import wait_ready

from api_calls import bearer
from live_server import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_zhiku_serve_starts_answers_and_logs_json(service_kb: Path, keys: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ZHIKU_LLM": "extractive", "HF_HUB_OFFLINE": "1"}
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "zhiku.cli", "serve", "--kb", str(service_kb), "--port",
                                   str(port)], env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, server, log)
        found = httpx.post(f"{base}/v1/search", json={"query": "annual leave"},
                           headers={**bearer(keys["pat"]), "X-Request-ID": "cli-probe-1"}, timeout=60)
        assert found.status_code == 200 and found.json()["hits"]
        assert httpx.post(f"{base}/v1/search", json={"query": "annual leave"}, timeout=60).status_code == 401
    finally:
        server.terminate()
        server.wait(timeout=60)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    mine = [line for line in lines if line.get("request_id") == "cli-probe-1"]
    assert mine and mine[0]["route"] == "/v1/search" and mine[0]["status"] == 200 and mine[0]["user"] == "pat"
    assert all("color_message" not in line for line in lines)
