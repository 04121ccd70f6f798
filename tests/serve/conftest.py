"""The service under test: a private copy of the leak-probe knowledge base with an account and an API
key for each probe user and an admin, and a ``TestClient`` over the app (extractive answers)."""
from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from leak_probe import FINANCE_USER, HR_USER, PUBLIC_USER
from zhiku.accounts import add_user, create_token
from zhiku.kb import KnowledgeBase
from zhiku.records import User
from zhiku.settings import Settings

ADMIN = User("ada", ("admin",))
USERS = (PUBLIC_USER, HR_USER, FINANCE_USER, ADMIN)


@pytest.fixture(scope="session")
def service_kb(leak_kb: Path, leak_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of ``leak_kb`` (which stays read-only) with the probe users' accounts."""
    copy = tmp_path_factory.mktemp("service") / "kb"
    shutil.copytree(leak_kb, copy)
    with KnowledgeBase.open(copy, "minilm") as kb:
        for user in USERS:
            add_user(kb, user.name, f"{user.name}-password-long", user.groups)
    return copy


@pytest.fixture(scope="session")
def keys(service_kb: Path) -> dict[str, str]:
    """An API key per account, by user name."""
    with KnowledgeBase.open(service_kb, "minilm") as kb:
        return {user.name: create_token(kb, user.name)[1] for user in USERS}


@pytest.fixture(scope="session")
def service_settings(service_kb: Path, leak_corpus: Path) -> Settings:
    return Settings(kb=service_kb, embedding_model="minilm", llm="extractive", workers=1, extractor="default",
                    ui_ingest_roots=(str(leak_corpus.parent),), api_rate_per_s=1000.0, api_rate_burst=1000)


@pytest.fixture(scope="session")
def client(service_settings: Settings, keys: dict[str, str]) -> Iterator[TestClient]:
    """One app for the session, models warmed at start as ``zhiku serve`` does."""
    from retrieval.assistant import Assistant
    from serve.app import create_app

    with TestClient(create_app(Assistant.open(service_settings), owns_assistant=True)) as test_client:
        deadline = time.monotonic() + 300
        while test_client.get("/readyz").json().get("status") == "starting":  # the warm-up, as a deployment waits
            assert time.monotonic() < deadline, "the service's warm-up did not finish"
            time.sleep(0.2)
        yield test_client
