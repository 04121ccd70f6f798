"""Leak probes for the service API (``tests/leak_probe.py``): for each probe user, every endpoint
answers only from the documents of their groups. Restricted documents are 404 (exactly like ids
that do not exist), and no marker of a group the user lacks appears in any response body."""
from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api_calls import bearer
from leak_probe import (
    FINANCE_ENTITY, FINANCE_MARKER, FINANCE_PERSON, FINANCE_USER, HR_MARKER, HR_USER, PUBLIC_USER, assert_no_marker,
)
from zhiku.kb import KnowledgeBase
from zhiku.records import User

USERS = (PUBLIC_USER, HR_USER, FINANCE_USER)
QUESTIONS = ("What does the salary band L5 pay?", f"Which company does Kestrel Robotics plan to acquire? {FINANCE_MARKER}",
             f"{HR_MARKER} band", f"Who is {FINANCE_PERSON}?", f"Where is {FINANCE_ENTITY} headquartered?")


@pytest.fixture(scope="module")
def doc_ids(service_kb: Path) -> dict[str, int]:
    """Document id by corpus-relative name (``handbook``, ``hr``, ``finance``)."""
    with KnowledgeBase.open(service_kb, "minilm") as kb:
        docs = kb.documents()
    names = {"handbook": "/handbook.md", "hr": "/hr/salary_bands.md", "finance": "/finance/acquisition.md"}
    return {name: d.id for d in docs for name, end in names.items() if d.source.endswith(end)}


@pytest.fixture(scope="module")
def chunk_of(service_kb: Path, doc_ids: dict[str, int]) -> dict[str, int]:
    with KnowledgeBase.open(service_kb, "minilm") as kb:
        return {name: kb.chunks_of(doc_id)[0].id for name, doc_id in doc_ids.items()}


def own_restricted(user: User) -> list[str]:
    return [g for g in ("hr", "finance") if g in user.groups]


def responses(client: TestClient, key: str, doc_ids: dict[str, int]) -> list[str]:
    """Every answering endpoint's body for this user, over the probe questions and the restricted ids
    (echoes of the caller's own words are left out: the probe questions name markers on purpose)."""
    headers = bearer(key)
    bodies = []
    for question in QUESTIONS:
        for mode in ("vector", "keyword", "graph", "hybrid"):
            found = client.post("/v1/search", json={"query": question, "mode": mode, "k": 10}, headers=headers)
            assert found.status_code == 200, found.text
            bodies.append(str(found.json()["hits"]))
        bodies.append(client.post("/v1/ask", json={"question": question, "k": 10}, headers=headers).text)
        bodies.append(client.post("/v1/ask", json={"question": question, "stream": True}, headers=headers).text)
        for stream in (False, True):
            bodies.append(client.post("/v1/chat/completions", headers=headers, json={
                "model": "zhiku-hybrid", "stream": stream, "messages": [{"role": "user", "content": question}]}).text)
    bodies.append(client.get("/v1/documents", params={"limit": 500}, headers=headers).text)
    bodies.append(client.get("/metrics").text + client.get("/readyz").text)
    bodies.append(client.get("/v1/documents", params={"q": "acquisition"}, headers=headers).text)
    bodies.append(client.get("/v1/graph/entities", params={"limit": 1000}, headers=headers).text)
    bodies.append(client.get("/v1/graph/entities", params={"by": "pagerank"}, headers=headers).text)
    for entity in ("Kestrel Robotics", FINANCE_ENTITY, FINANCE_PERSON, "Anna Weber"):
        found = client.get("/v1/graph/neighbors", params={"entity": entity, "hops": 3}, headers=headers)
        bodies.append(found.text.replace(f"no entity named '{entity}'", "no entity named …"))
    for doc_id in doc_ids.values():
        for suffix in ("", "/file", "/summary"):
            bodies.append(client.get(f"/v1/documents/{doc_id}{suffix}", headers=headers).text)
        bodies.append(client.get("/v1/graph/entities", params={"doc": doc_id}, headers=headers).text)
    return bodies


@pytest.mark.parametrize("user", USERS, ids=[u.name for u in USERS])
def test_no_endpoint_shows_a_marker_of_a_group_the_user_lacks(client: TestClient, keys: dict[str, str],
                                                              doc_ids: dict[str, int], user: User) -> None:
    bodies = responses(client, keys[user.name], doc_ids)
    for body in bodies:
        assert_no_marker(body, user)
    seen = " ".join(bodies)
    for group, marker in (("hr", HR_MARKER), ("finance", FINANCE_MARKER)):
        if group in user.groups:
            assert marker in seen, f"{user.name} should see their own group's marker {marker}"


@pytest.mark.parametrize("user", USERS, ids=[u.name for u in USERS])
def test_a_restricted_document_is_answered_like_a_missing_one(client: TestClient, keys: dict[str, str],
                                                              doc_ids: dict[str, int], user: User) -> None:
    headers = bearer(keys[user.name])
    for suffix in ("", "/file", "/summary"):
        missing = client.get(f"/v1/documents/999999{suffix}", headers=headers)
        assert missing.status_code == 404
        for name in ("hr", "finance"):
            response = client.get(f"/v1/documents/{doc_ids[name]}{suffix}", headers=headers)
            if name in user.groups:
                assert response.status_code == 200, response.text
            else:
                assert response.status_code == 404
                assert response.json()["error"]["message"] == \
                    missing.json()["error"]["message"].replace("999999", str(doc_ids[name]))
    listed = {d["id"] for d in client.get("/v1/documents", headers=headers).json()["documents"]}
    assert doc_ids["handbook"] in listed
    assert listed & {doc_ids["hr"], doc_ids["finance"]} == {doc_ids[g] for g in own_restricted(user)}


def test_unseen_graph_entities_are_unknown(client: TestClient, keys: dict[str, str]) -> None:
    hidden = client.get("/v1/graph/neighbors", params={"entity": FINANCE_ENTITY}, headers=bearer(keys["pat"]))
    unknown = client.get("/v1/graph/neighbors", params={"entity": "Nonexistent Corp"}, headers=bearer(keys["pat"]))
    assert hidden.status_code == unknown.status_code == 404
    assert client.get("/v1/graph/neighbors", params={"entity": FINANCE_ENTITY},
                      headers=bearer(keys["finn"])).status_code == 200


def test_feedback_may_cite_only_visible_passages(client: TestClient, keys: dict[str, str],
                                                 chunk_of: dict[str, int]) -> None:
    body = {"question": "q", "answer": "a [1]", "rating": -1, "chunk_ids": [chunk_of["finance"]]}
    refused = client.post("/v1/feedback", json=body, headers=bearer(keys["hana"]))
    missing = client.post("/v1/feedback", json={**body, "chunk_ids": [999999]}, headers=bearer(keys["hana"]))
    assert refused.status_code == missing.status_code == 404
    assert client.post("/v1/feedback", json=body, headers=bearer(keys["finn"])).status_code == 201


def test_jobs_of_others_are_unknown(client: TestClient, keys: dict[str, str], leak_corpus: Path) -> None:
    started = client.post("/v1/ingest", data={"paths": str(leak_corpus / "handbook.md")}, headers=bearer(keys["ada"]))
    assert started.status_code == 202, started.text
    job = started.json()["id"]
    assert client.get(f"/v1/jobs/{job}", headers=bearer(keys["pat"])).status_code == 404
    assert client.get(f"/v1/jobs/{job}", headers=bearer(keys["ada"])).status_code == 200


@pytest.mark.parametrize("user", USERS, ids=[u.name for u in USERS])
def test_only_admins_may_ingest(client: TestClient, keys: dict[str, str], leak_corpus: Path, user: User) -> None:
    response = client.post("/v1/ingest", data={"paths": str(leak_corpus)}, headers=bearer(keys[user.name]))
    assert response.status_code == 403 and "admin" in response.json()["error"]["message"]
