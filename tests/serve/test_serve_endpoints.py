"""What each endpoint answers: the CLI's ``--json`` shapes, streamed answers, documents and downloads,
ingest jobs, the graph, feedback, OpenAI-shaped chat, probes, metrics and the JSON request log."""
from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import pytest
from cli_runner import run_zhiku
from fastapi.testclient import TestClient

from api_calls import bearer
from serve.logs import JsonFormatter
from serve.sse import parse
from zhiku.kb import KnowledgeBase

QUESTION = "How many days of annual leave do employees get?"


def _without_timing(payload: dict) -> dict:
    return {k: v for k, v in payload.items() if k != "timing"}


# ------------------------------------------------------------------ the CLI's contracts
def test_search_answers_exactly_what_zhiku_search_json_prints(
        client: TestClient, keys: dict[str, str], service_kb: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    api = client.post("/v1/search", json={"query": "salary bands", "mode": "keyword", "k": 3},
                      headers=bearer(keys["hana"]))
    code, out, _ = run_zhiku(capsys, monkeypatch, "search", "salary bands", "--mode", "keyword", "--k", "3",
                             "--kb", str(service_kb), "--user", "hana", "--json")
    assert api.status_code == 200 and code == 0
    assert api.json() == json.loads(out)


def test_ask_answers_exactly_what_zhiku_ask_json_prints(
        client: TestClient, keys: dict[str, str], service_kb: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    api = client.post("/v1/ask", json={"question": QUESTION}, headers=bearer(keys["pat"]))
    code, out, _ = run_zhiku(capsys, monkeypatch, "ask", QUESTION, "--llm", "extractive", "--kb", str(service_kb),
                             "--user", "pat", "--json")
    assert api.status_code == 200 and code == 0
    assert _without_timing(api.json()) == _without_timing(json.loads(out))
    assert set(api.json()["timing"]) == {"retrieval_ms", "first_token_ms", "tokens", "tokens_per_s"}
    assert "30 days" in api.json()["answer"] and api.json()["citations"][0]["n"] == 1


def test_summary_answers_what_zhiku_summarize_json_prints(
        client: TestClient, keys: dict[str, str], service_kb: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    doc = client.get("/v1/documents", params={"q": "handbook"}, headers=bearer(keys["pat"])).json()["documents"][0]
    api = client.get(f"/v1/documents/{doc['id']}/summary", headers=bearer(keys["pat"]))
    code, out, _ = run_zhiku(capsys, monkeypatch, "summarize", str(doc["id"]), "--llm", "extractive",
                             "--kb", str(service_kb), "--user", "pat", "--json")
    assert api.status_code == 200 and code == 0
    assert {k: v for k, v in api.json().items() if k != "cached"} == \
        {k: v for k, v in json.loads(out).items() if k != "cached"}


def test_graph_endpoints_answer_what_zhiku_graph_json_prints(
        client: TestClient, keys: dict[str, str], service_kb: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    api = client.get("/v1/graph/entities", params={"limit": 20}, headers=bearer(keys["finn"])).json()
    code, out, _ = run_zhiku(capsys, monkeypatch, "graph", "entities", "--limit", "20", "--kb", str(service_kb),
                             "--user", "finn", "--json")
    assert code == 0 and api == json.loads(out)
    api = client.get("/v1/graph/neighbors", params={"entity": "Kestrel Robotics", "hops": 2},
                     headers=bearer(keys["finn"])).json()
    code, out, _ = run_zhiku(capsys, monkeypatch, "graph", "neighbors", "Kestrel Robotics", "--hops", "2",
                             "--kb", str(service_kb), "--user", "finn", "--json")
    assert code == 0 and api == json.loads(out) and api["facts"]


@pytest.mark.parametrize("body, status", [
    ({"query": ""}, 422), ({"query": "leave", "mode": "fuzzy"}, 422), ({"query": "leave", "k": 0}, 422),
    ({"query": "leave", "extra": 1}, 422), ({}, 422),
])
def test_bad_requests_are_422_with_a_message(client: TestClient, keys: dict[str, str], body: dict,
                                             status: int) -> None:
    response = client.post("/v1/search", json=body, headers=bearer(keys["pat"]))
    assert response.status_code == status, response.text


# ------------------------------------------------------------------ streaming
def test_ask_streams_tokens_then_citations_then_the_final_record(client: TestClient, keys: dict[str, str]) -> None:
    with client.stream("POST", "/v1/ask", json={"question": QUESTION, "stream": True},
                       headers=bearer(keys["pat"])) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = parse(response.read().decode("utf-8"))
    names = [name for name, _ in events]
    assert names[0] == "token" and names[-1] == "done"
    assert names == sorted(names, key=["token", "citation", "done"].index)
    final = json.loads(events[-1][1])
    assert "".join(json.loads(d)["text"] for n, d in events if n == "token").strip() == final["answer"]
    assert [json.loads(d) for n, d in events if n == "citation"] == final["citations"]


def test_a_streamed_request_that_cannot_be_served_fails_before_the_stream(client: TestClient,
                                                                          keys: dict[str, str]) -> None:
    response = client.post("/v1/ask", json={"question": "   ", "stream": True}, headers=bearer(keys["pat"]))
    assert response.status_code == 422 and response.headers["content-type"] == "application/json"


def test_sse_parse_reads_named_unnamed_multiline_and_comment_lines() -> None:
    text = ": keep-alive\n\nevent: token\ndata: {\"text\": \"a\"}\n\ndata: line one\ndata: line two\n\n" \
           "data: [DONE]\r\n\r\n"
    assert parse(text) == [("token", '{"text": "a"}'), ("message", "line one\nline two"), ("message", "[DONE]")]


def test_a_failure_mid_stream_ends_it_with_an_error_event() -> None:
    from serve.sse import guarded
    from zhiku.errors import LLMError

    def items():
        yield "partial "
        raise LLMError("the LLM server went away; check openai_base_url")

    assert list(guarded(items(), logging.getLogger("test"))) == [
        "partial ", {"error": {"type": "LLMError", "message": "the LLM server went away; check openai_base_url"}}]


def test_a_bug_mid_stream_ends_it_with_a_reference_never_its_detail(caplog: pytest.LogCaptureFixture) -> None:
    from serve.sse import guarded

    def items():
        yield "partial "
        raise KeyError("an internal invariant")

    with caplog.at_level(logging.ERROR):
        *_, last = guarded(items(), logging.getLogger("test"))
    assert last["error"]["type"] == "InternalError" and "invariant" not in last["error"]["message"]
    assert last["error"]["message"].split("reference ")[1].split(")")[0] in caplog.text


def test_a_bug_behind_a_route_is_a_500_with_a_reference_never_its_detail(
        client: TestClient, keys: dict[str, str], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("an internal invariant")

    monkeypatch.setattr(client.app.state.zhiku.assistant.kb, "documents", broken)
    with caplog.at_level(logging.ERROR):  # a client of its own: the session's re-raises server errors
        response = TestClient(client.app, raise_server_exceptions=False).get("/v1/documents",
                                                                              headers=bearer(keys["pat"]))
    error = response.json()["error"]
    assert response.status_code == 500 and error["type"] == "InternalError"
    assert "invariant" not in error["message"] and "bug" in error["message"]
    assert error["message"].split("reference ")[1].split(")")[0] in caplog.text


# ------------------------------------------------------------------ documents
def test_documents_filter_and_page(client: TestClient, keys: dict[str, str]) -> None:
    everything = client.get("/v1/documents", headers=bearer(keys["finn"])).json()
    assert everything["total"] == 2 and {d["kind"] for d in everything["documents"]} == {"md"}
    first = client.get("/v1/documents", params={"limit": 1}, headers=bearer(keys["finn"])).json()
    second = client.get("/v1/documents", params={"limit": 1, "offset": 1}, headers=bearer(keys["finn"])).json()
    assert first["total"] == 2 and [*first["documents"], *second["documents"]] == everything["documents"]
    only = client.get("/v1/documents", params={"group": "finance"}, headers=bearer(keys["finn"])).json()
    assert [d["groups"] for d in only["documents"]] == [["finance"]]
    assert client.get("/v1/documents", params={"kind": "pdf"}, headers=bearer(keys["finn"])).json()["total"] == 0
    assert client.get("/v1/documents", params={"limit": 0}, headers=bearer(keys["finn"])).status_code == 422


def test_a_document_has_its_catalogue_entry_and_entities(client: TestClient, keys: dict[str, str]) -> None:
    doc = client.get("/v1/documents", params={"q": "acquisition"}, headers=bearer(keys["finn"])).json()["documents"][0]
    detail = client.get(f"/v1/documents/{doc['id']}", headers=bearer(keys["finn"])).json()
    assert detail["title"] == "Acquisition plan" and "Vantorix Holdings" in detail["entities"]
    assert "text" not in detail and detail["chunks"] >= 1


def test_the_original_file_downloads_only_while_it_is_the_one_ingested(
        client: TestClient, keys: dict[str, str], leak_corpus: Path, service_kb: Path, tmp_path: Path) -> None:
    doc = client.get("/v1/documents", params={"q": "handbook"}, headers=bearer(keys["pat"])).json()["documents"][0]
    path = Path(doc["source"])
    response = client.get(f"/v1/documents/{doc['id']}/file", headers=bearer(keys["pat"]))
    assert response.status_code == 200 and response.content == path.read_bytes()
    assert hashlib.sha256(response.content).hexdigest() == doc["content_hash"]
    assert "handbook.md" in response.headers["content-disposition"]
    original = path.read_bytes()
    try:
        path.write_bytes(original + b"\nchanged after ingest\n")
        changed = client.get(f"/v1/documents/{doc['id']}/file", headers=bearer(keys["pat"]))
        assert changed.status_code == 409 and "changed on disk" in changed.json()["error"]["message"]
    finally:
        path.write_bytes(original)
    from zhiku import audit
    with KnowledgeBase.open(service_kb, "minilm") as kb:
        downloads = [e.detail for e in audit.events(kb) if e.event == audit.DOWNLOAD and e.user == "pat"]
    assert [d["ok"] for d in downloads][-2:] == [True, False]


# ------------------------------------------------------------------ ingest jobs
def _finished(client: TestClient, job_id: str, key: str) -> dict:
    for _ in range(600):
        job = client.get(f"/v1/jobs/{job_id}", headers=bearer(key)).json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def test_an_admin_uploads_files_and_follows_the_job_to_the_ingest_report(
        client: TestClient, keys: dict[str, str]) -> None:
    files = [("files", ("travel.md", b"# Travel policy\n\nTrain travel is booked in second class.\n", "text/markdown"))]
    started = client.post("/v1/ingest", files=files, data={"groups": "eng"}, headers=bearer(keys["ada"]))
    assert started.status_code == 202, started.text
    assert started.json()["state"] == "queued" and started.json()["status_url"] == f"/v1/jobs/{started.json()['id']}"
    job = _finished(client, started.json()["id"], keys["ada"])
    assert job["state"] == "done", job
    report = job["report"]
    assert report["added"] == 1 and not report["failed"] and job["progress"]["done"] == job["progress"]["total"] == 1
    assert set(report) >= {"added", "updated", "unchanged", "removed", "failed", "skipped", "documents", "chunks"}
    hits = client.post("/v1/search", json={"query": "train travel second class"}, headers=bearer(keys["pat"])).json()
    assert any("Train travel" in h["text"] for h in hits["hits"])
    assert not any("Train travel" in h["text"] for h in client.post(
        "/v1/search", json={"query": "train travel second class"}, headers=bearer(keys["hana"])).json()["hits"])
    metrics = client.get("/metrics").text
    assert 'zhiku_ingest_jobs_total{state="done"}' in metrics and 'zhiku_ingest_files_total{outcome="added"}' in metrics


@pytest.mark.parametrize("data, files, fragment", [
    ({"paths": "/etc"}, None, "outside the folders allowed"),
    ({}, None, "nothing to ingest"),
    ({}, [("files", ("zhiku-acl.toml", b'"**" = ["hr"]\n', "text/plain"))], "access groups cannot be set"),
    ({"paths": "/nonexistent-folder"}, None, "no such file"),
    ({"groups": "bad group!"}, [("files", ("a.md", b"a", "text/plain"))], "not allowed"),
])
def test_ingest_refuses_paths_outside_the_allow_list_and_bad_uploads(
        client: TestClient, keys: dict[str, str], data: dict, files: list | None, fragment: str) -> None:
    response = client.post("/v1/ingest", data=data, files=files, headers=bearer(keys["ada"]))
    assert response.status_code in (400, 403, 422), response.text
    assert fragment in response.json()["error"]["message"]


# ------------------------------------------------------------------ feedback, models, chat
def test_feedback_is_stored_with_its_cited_passages(client: TestClient, keys: dict[str, str],
                                                    service_kb: Path) -> None:
    answer = client.post("/v1/ask", json={"question": QUESTION}, headers=bearer(keys["pat"])).json()
    cited = [c["chunk_id"] for c in answer["citations"]]
    created = client.post("/v1/feedback", headers=bearer(keys["pat"]), json={
        "question": QUESTION, "answer": answer["answer"], "rating": 1, "comment": "clear", "chunk_ids": cited})
    assert created.status_code == 201
    with KnowledgeBase.open(service_kb, "minilm") as kb:
        row = kb.query("SELECT user, rating, comment, citations FROM feedback WHERE id = ?", (created.json()["id"],))[0]
    assert (row[0], row[1], row[2]) == ("pat", 1, "clear")
    assert [c["chunk_id"] for c in json.loads(row[3])] == cited
    assert client.post("/v1/feedback", headers=bearer(keys["pat"]), json={
        "question": "q", "answer": "a", "rating": 5}).status_code == 422


def test_models_are_zhiku_and_one_per_mode(client: TestClient, keys: dict[str, str]) -> None:
    ids = [m["id"] for m in client.get("/v1/models", headers=bearer(keys["pat"])).json()["data"]]
    assert ids == ["zhiku", "zhiku-vector", "zhiku-keyword", "zhiku-graph", "zhiku-hybrid", "zhiku-hybrid+rerank"]


def test_chat_completions_answer_with_sources_and_refuse_unknown_models(client: TestClient,
                                                                        keys: dict[str, str]) -> None:
    body = {"model": "zhiku-keyword", "messages": [{"role": "system", "content": "Be brief."},
                                                   {"role": "user", "content": QUESTION}], "temperature": 0.2}
    reply = client.post("/v1/chat/completions", json=body, headers=bearer(keys["pat"])).json()
    content = reply["choices"][0]["message"]["content"]
    assert reply["object"] == "chat.completion" and "30 days" in content and "Sources:" in content
    assert reply["citations"][0]["n"] == 1 and reply["usage"]["completion_tokens"] > 0
    unknown = client.post("/v1/chat/completions", json={**body, "model": "gpt-4o"}, headers=bearer(keys["pat"]))
    assert unknown.status_code == 404 and "GET /v1/models" in unknown.json()["error"]["message"]
    last_not_user = {"model": "zhiku", "messages": [{"role": "assistant", "content": "Hello"}]}
    assert client.post("/v1/chat/completions", json=last_not_user, headers=bearer(keys["pat"])).status_code == 422


def test_chat_streams_openai_chunks_ending_in_done(client: TestClient, keys: dict[str, str]) -> None:
    body = {"model": "zhiku", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    text = client.post("/v1/chat/completions", json=body, headers=bearer(keys["pat"])).text
    events = [data for _, data in parse(text)]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["citations"]
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert "30 days" in content and "Sources:" in content


def test_a_conversation_becomes_the_assistants_history() -> None:
    from serve.openai_api import conversation
    from serve.schemas import ChatMessage

    question, history = conversation([
        ChatMessage(role="system", content="ignored"), ChatMessage(role="user", content="Who is the CEO?"),
        ChatMessage(role="assistant", content="Anna Weber [1]"),
        ChatMessage(role="user", content=[{"type": "text", "text": "Where is "}, {"type": "text", "text": "she?"}])])
    assert question == "Where is she?"
    assert [(a.question, a.text) for a in history] == [("Who is the CEO?", "Anna Weber [1]")]


# ------------------------------------------------------------------ operations
def test_readyz_reports_the_knowledge_base_and_the_answer_backend(client: TestClient) -> None:
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["llm"]["backend"] == "extractive" and ready["documents"] >= 3


def test_metrics_count_requests_by_route_and_status_and_time_answers(client: TestClient,
                                                                     keys: dict[str, str]) -> None:
    client.post("/v1/ask", json={"question": QUESTION}, headers=bearer(keys["pat"]))
    client.get("/v1/documents/999999", headers=bearer(keys["pat"]))
    text = client.get("/metrics").text
    assert 'zhiku_requests_total{method="POST",route="/v1/ask",status="200"}' in text
    assert 'zhiku_requests_total{method="GET",route="/v1/documents/{doc_id}",status="404"}' in text
    for name in ("zhiku_request_seconds_bucket", "zhiku_retrieval_seconds_bucket", "zhiku_generation_seconds_bucket",
                 "zhiku_tokens_generated_total", "zhiku_kb_documents", "zhiku_kb_chunks"):
        assert name in text


def test_log_lines_are_json_with_the_request_id() -> None:
    from serve.logs import new_request_id, request_id

    token = request_id.set("abc-123")
    try:
        record = logging.LogRecord("zhiku.serve", logging.INFO, __file__, 1, "request", (), None)
        record.route, record.status = "/v1/ask", 200
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(token)
    assert line["request_id"] == "abc-123" and line["route"] == "/v1/ask" and line["status"] == 200
    assert line["message"] == "request" and line["level"] == "info" and line["time"].endswith("Z")
    assert new_request_id("ok-id_1.2") == "ok-id_1.2" and len(new_request_id("bad id\n")) == 32


def test_openapi_documents_every_route(client: TestClient) -> None:
    paths = set(client.get("/openapi.json").json()["paths"])
    assert paths >= {"/v1/search", "/v1/ask", "/v1/documents", "/v1/documents/{doc_id}", "/v1/documents/{doc_id}/file",
                     "/v1/documents/{doc_id}/summary", "/v1/ingest", "/v1/jobs/{job_id}", "/v1/graph/entities",
                     "/v1/graph/neighbors", "/v1/feedback", "/v1/models", "/v1/chat/completions", "/healthz",
                     "/readyz", "/metrics"}


def test_the_docs_page_works_offline(client: TestClient) -> None:
    page = client.get("/docs").text
    assert "/docs/assets/swagger-ui-bundle.js" in page and "cdn.jsdelivr" not in page and "/openapi.json" in page
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs/assets/swagger-ui.css").status_code == 200
