"""API keys and who may call: ``zhiku user token``, ``Authorization: Bearer``, rate limits, the audit
log, and the refusal to serve an open knowledge base off loopback."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import run_zhiku
from fastapi.testclient import TestClient

from api_calls import ENDPOINTS, bearer
from serve.auth import RateLimited, RateLimiter, bearer_key
from zhiku import audit
from zhiku.accounts import KEY_PREFIX, add_user, create_token, key_hash, remove_user, revoke_token, tokens, user_for_key
from zhiku.cli.serve import refusal, self_call
from zhiku.errors import AccountError
from zhiku.kb import KnowledgeBase
from zhiku.records import User
from zhiku.settings import Settings


@pytest.fixture()
def kb(tmp_path: Path) -> KnowledgeBase:
    with KnowledgeBase.open(tmp_path / "kb", "minilm", 384) as kb:
        add_user(kb, "hana", "hana-password-long", ("hr",))
        yield kb


# ------------------------------------------------------------------ keys in the knowledge base
def test_a_key_acts_as_its_user_with_the_groups_stored_now(kb: KnowledgeBase) -> None:
    token, key = create_token(kb, "hana")
    assert key.startswith(KEY_PREFIX) and len(key) > 40 and token.hint == key[:len(KEY_PREFIX) + 4]
    assert user_for_key(kb, key) == User("hana", ("hr",))
    from zhiku.accounts import set_groups
    set_groups(kb, "hana", ("hr", "finance"))
    assert user_for_key(kb, key) == User("hana", ("hr", "finance"))


def test_only_the_sha256_of_a_key_is_stored(kb: KnowledgeBase) -> None:
    _, key = create_token(kb, "hana")
    stored = [tuple(r) for r in kb.query("SELECT * FROM api_tokens")]
    assert key not in json.dumps(stored) and any(key_hash(key) in row for row in stored)


def test_unknown_revoked_expired_and_orphaned_keys_do_not_authenticate(kb: KnowledgeBase) -> None:
    now = 1_000_000.0
    assert user_for_key(kb, KEY_PREFIX + "x" * 43) is None and user_for_key(kb, "not-a-key") is None
    revoked, revoked_key = create_token(kb, "hana")
    assert revoke_token(kb, revoked.id) and user_for_key(kb, revoked_key) is None
    assert not revoke_token(kb, revoked.id)  # already revoked
    _, expiring = create_token(kb, "hana", expires_at=now + 60, clock=lambda: now)
    assert user_for_key(kb, expiring, clock=lambda: now + 59) is not None
    assert user_for_key(kb, expiring, clock=lambda: now + 60) is None
    _, orphan = create_token(kb, "hana")
    remove_user(kb, "hana")
    add_user(kb, "hana", "another-password-long", ())  # a new account of the same name
    assert user_for_key(kb, orphan) is None and tokens(kb, "hana") == []


def test_keys_are_only_made_for_existing_users_and_future_expiries(kb: KnowledgeBase) -> None:
    with pytest.raises(AccountError, match="no user named 'nobody'"):
        create_token(kb, "nobody")
    with pytest.raises(AccountError, match="in the past"):
        create_token(kb, "hana", expires_at=1.0)


def test_token_commands_print_the_key_once_on_the_last_line_and_list_only_hints(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "kb"
    with KnowledgeBase.open(root, "minilm", 384) as kb:
        add_user(kb, "hana", "hana-password-long", ("hr",))
    code, out, _ = run_zhiku(capsys, monkeypatch, "user", "token", "create", "hana", "--expires", "30d", "--kb", str(root))
    key = out.strip().splitlines()[-1]
    assert code == 0 and key.startswith(KEY_PREFIX) and "shown only now" in out
    code, out, _ = run_zhiku(capsys, monkeypatch, "user", "token", "list", "--kb", str(root), "--json")
    listed = json.loads(out)
    assert code == 0 and key not in out and listed[0]["user"] == "hana" and listed[0]["active"]
    assert listed[0]["expires_at"] is not None
    code, out, _ = run_zhiku(capsys, monkeypatch, "user", "token", "revoke", str(listed[0]["id"]), "--kb", str(root))
    assert code == 0
    code, _, err = run_zhiku(capsys, monkeypatch, "user", "token", "revoke", str(listed[0]["id"]), "--kb", str(root))
    assert code == 1 and "no active API key" in err
    code, _, err = run_zhiku(capsys, monkeypatch, "user", "token", "create", "nobody", "--kb", str(root))
    assert code == 2 and "no user named" in err
    with KnowledgeBase.open(root, "minilm") as kb:
        kinds = [e.event for e in audit.events(kb)]
        assert kinds.count(audit.TOKEN_CREATE) == 1 and kinds.count(audit.TOKEN_REVOKE) == 1
        assert key not in json.dumps([e.to_json() for e in audit.events(kb)])


# ------------------------------------------------------------------ the header and the limits
@pytest.mark.parametrize("header, key", [
    (None, None), ("", None), ("Bearer zk_abc", "zk_abc"), ("bearer  zk_abc ", "zk_abc"),
    ("Basic dXNlcjpwYXNz", None), ("Bearer", None),
])
def test_bearer_header_parsing(header: str | None, key: str | None) -> None:
    assert bearer_key(header) == key


def test_the_token_bucket_allows_a_burst_then_the_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    for _ in range(3):
        limiter.take("k")
    with pytest.raises(RateLimited) as refused:
        limiter.take("k")
    assert refused.value.retry_after_s == pytest.approx(0.5)
    limiter.take("other")  # buckets are per key
    now[0] = 0.5
    limiter.take("k")
    with pytest.raises(RateLimited):
        limiter.take("k")


def test_a_key_over_its_rate_gets_429_with_retry_after(service_settings, keys: dict[str, str]) -> None:
    from retrieval.assistant import Assistant
    from serve.app import create_app

    strict = service_settings.replace(api_rate_per_s=0.01, api_rate_burst=2)
    with TestClient(create_app(Assistant.open(strict), owns_assistant=True, warm=False)) as client:
        codes = [client.get("/v1/models", headers=bearer(keys["pat"])).status_code for _ in range(3)]
        refused = client.get("/v1/models", headers=bearer(keys["pat"]))
        assert codes == [200, 200, 429] and refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert client.get("/v1/models", headers=bearer(keys["hana"])).status_code == 200  # another key
        assert "zhiku_rate_limited_total 2.0" in client.get("/metrics").text


# ------------------------------------------------------------------ every endpoint needs a key
@pytest.mark.parametrize("method, path, kwargs", ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
@pytest.mark.parametrize("header", [None, "Bearer zk_not-a-real-key", "Basic aGFuYTpwYXNz", "Bearer "])
def test_every_endpoint_refuses_a_missing_or_bad_key(client: TestClient, method: str, path: str, kwargs: dict,
                                                     header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = client.request(method, path, headers=headers, **kwargs)
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["type"] == "Unauthorized"


def test_a_revoked_key_is_refused_at_once(client: TestClient, service_kb: Path) -> None:
    with KnowledgeBase.open(service_kb, "minilm") as kb:
        token, key = create_token(kb, "pat")
        assert client.get("/v1/models", headers=bearer(key)).status_code == 200
        revoke_token(kb, token.id)
    assert client.get("/v1/models", headers=bearer(key)).status_code == 401


def test_probes_and_docs_need_no_key(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "Zhiku"


def test_without_accounts_a_loopback_service_serves_the_local_user(tmp_path: Path, leak_kb: Path) -> None:
    import shutil

    from retrieval.assistant import Assistant
    from serve.app import create_app

    shutil.copytree(leak_kb, tmp_path / "kb")
    settings = Settings(kb=tmp_path / "kb", embedding_model="minilm", llm="extractive")
    with TestClient(create_app(Assistant.open(settings), owns_assistant=True, warm=False)) as client:
        response = client.post("/v1/search", json={"query": "salary bands"})
        assert response.status_code == 200 and response.json()["hits"]
        assert client.get("/v1/models", headers=bearer("zk_whatever")).status_code == 401


# ------------------------------------------------------------------ audit
def test_every_request_lands_in_the_audit_log_with_its_request_id(client: TestClient, keys: dict[str, str],
                                                                  service_kb: Path) -> None:
    ok = client.get("/v1/documents", headers={**bearer(keys["hana"]), "X-Request-ID": "probe-123"})
    refused = client.get("/v1/documents")
    assert ok.headers["x-request-id"] == "probe-123" and len(refused.headers["x-request-id"]) == 32
    with KnowledgeBase.open(service_kb, "minilm") as kb:
        rows = [e for e in audit.events(kb) if e.event == audit.API_REQUEST]
    mine = [r for r in rows if r.detail["request_id"] == "probe-123"]
    assert mine and mine[0].user == "hana" and mine[0].detail["route"] == "/v1/documents"
    assert mine[0].detail["status"] == 200
    theirs = [r for r in rows if r.detail["request_id"] == refused.headers["x-request-id"]]
    assert theirs and theirs[0].user == "-" and theirs[0].detail["status"] == 401


# ------------------------------------------------------------------ binding
@pytest.mark.parametrize("host, users, refused", [
    ("127.0.0.1", False, False), ("localhost", False, False), ("::1", False, False),
    ("0.0.0.0", False, True), ("192.168.1.20", False, True), ("0.0.0.0", True, False),
])
def test_off_loopback_the_service_needs_accounts(host: str, users: bool, refused: bool) -> None:
    assert (refusal(host, users) is not None) == refused


@pytest.mark.parametrize("llm, base_url, host, port, refused", [
    ("openai", "http://127.0.0.1:8000/v1", "127.0.0.1", 8000, True),
    ("openai", "http://localhost:8000/v1", "0.0.0.0", 8000, True),
    ("openai", "http://127.0.0.1:8000/v1", "127.0.0.1", 8001, False),
    ("openai", "http://10.0.0.5:8000/v1", "127.0.0.1", 8000, False),
    ("extractive", "http://127.0.0.1:8000/v1", "127.0.0.1", 8000, False),
])
def test_the_service_refuses_to_be_its_own_llm_server(llm: str, base_url: str, host: str, port: int,
                                                      refused: bool) -> None:
    settings = Settings(llm=llm, openai_base_url=base_url)
    assert (self_call(settings, host, port) is not None) == refused


def test_zhiku_serve_refuses_an_open_knowledge_base_off_loopback(
        leak_kb: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run_zhiku(capsys, monkeypatch, "serve", "--kb", str(leak_kb), "--host", "0.0.0.0")
    assert code == 2 and "refusing to serve on 0.0.0.0" in err and "zhiku user token create" in err
