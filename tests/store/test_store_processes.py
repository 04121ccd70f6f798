"""Several ``zhiku serve`` processes on one PostgreSQL store (as on several machines: each with its
own local folder) see each other's ingests, and share one writer lock."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from http_ready import wait_ready
from leak_probe import PUBLIC_USER, build_leak_corpus

from ingest.pipeline import ingest
from zhiku.accounts import add_user, create_token
from zhiku.kb import KnowledgeBase
from zhiku.records import User
from zhiku.settings import Settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ADMIN = User("ada", ("admin",))
NEW_WORD = "Plumbagonal"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def serve(store: str, folder: Path, stack: ExitStack) -> tuple[str, subprocess.Popen, Path]:
    """Start ``zhiku serve`` on ``store`` with ``folder`` as its local folder: (base URL, process, log)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ZHIKU_STORE": store, "ZHIKU_LLM": "extractive",
           "HF_HUB_OFFLINE": "1", "ZHIKU_WORKERS": "1"}
    folder.mkdir(parents=True)
    log = (folder.parent / f"{folder.name}.log").open("w")
    stack.enter_context(log)
    server = subprocess.Popen([sys.executable, "-m", "zhiku.cli", "serve", "--kb", str(folder), "--port", str(port)],
                              env=env, cwd=folder.parent, stdout=log, stderr=subprocess.STDOUT)
    stack.callback(server.wait, timeout=60)
    stack.callback(server.terminate)
    return f"http://127.0.0.1:{port}", server, folder.parent / f"{folder.name}.log"


def search(base: str, key: str, query: str) -> list[str]:
    found = httpx.post(f"{base}/v1/search", json={"query": query, "mode": "hybrid"}, headers=bearer(key), timeout=60)
    assert found.status_code == 200, found.text
    return [h["text"] for h in found.json()["hits"]]


def test_two_servers_on_one_store_see_each_others_ingest(pg_uri, embedder, tmp_path):
    corpus = build_leak_corpus(tmp_path / "corpus")
    settings = Settings(kb=tmp_path / "seed", store=pg_uri, embedding_model="minilm", workers=1)
    with KnowledgeBase.open(settings.kb, embedder.name, embedder.dimension, store=pg_uri) as kb:
        ingest(kb, embedder, [corpus / "handbook.md"], settings)
        add_user(kb, ADMIN.name, "ada-password-long", ADMIN.groups)
        add_user(kb, PUBLIC_USER.name, "pat-password-long", PUBLIC_USER.groups)
        admin_key, pat_key = create_token(kb, ADMIN.name)[1], create_token(kb, PUBLIC_USER.name)[1]
    with ExitStack() as stack:
        (a, server_a, log_a), (b, server_b, log_b) = (serve(pg_uri, tmp_path / n, stack) for n in ("a", "b"))
        wait_ready(a, server_a, log_a)
        wait_ready(b, server_b, log_b)
        assert not any(NEW_WORD in t for t in search(b, pat_key, NEW_WORD))

        upload = {"files": ("new.md", f"# Garden notes\n\nThe {NEW_WORD} shrub flowers in May.\n".encode())}
        job = httpx.post(f"{a}/v1/ingest", files=upload, headers=bearer(admin_key), timeout=60)
        assert job.status_code == 202, job.text
        deadline = time.monotonic() + 120
        while (state := httpx.get(f"{a}{job.json()['status_url']}", headers=bearer(admin_key),
                                  timeout=30).json())["state"] not in ("done", "failed"):
            assert time.monotonic() < deadline, state
            time.sleep(0.5)
        assert state["state"] == "done" and state["report"]["added"] == 1, state

        assert any(NEW_WORD in t for t in search(b, pat_key, NEW_WORD))  # B saw A's commit
        assert any(NEW_WORD in t for t in search(a, pat_key, NEW_WORD))
        listed = httpx.get(f"{b}/v1/documents", headers=bearer(pat_key), timeout=30).json()
        assert any(d["title"] == "Garden notes" for d in listed["documents"]), listed
