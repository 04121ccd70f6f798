"""Requests the service tests send: the auth header, and one valid call of every ``/v1`` endpoint."""
from __future__ import annotations

from typing import Any

#: (method, path, keyword arguments of ``TestClient.request``): each endpoint once, with valid input.
ENDPOINTS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("POST", "/v1/search", {"json": {"query": "annual leave"}}),
    ("POST", "/v1/ask", {"json": {"question": "How many days of annual leave?"}}),
    ("POST", "/v1/ask", {"json": {"question": "How many days of annual leave?", "stream": True}}),
    ("GET", "/v1/documents", {}),
    ("GET", "/v1/documents/1", {}),
    ("GET", "/v1/documents/1/file", {}),
    ("GET", "/v1/documents/1/summary", {}),
    ("POST", "/v1/ingest", {"data": {"paths": "/nonexistent"}}),
    ("GET", "/v1/jobs/0123456789abcdef", {}),
    ("GET", "/v1/graph/entities", {}),
    ("GET", "/v1/graph/neighbors", {"params": {"entity": "Kestrel Robotics"}}),
    ("POST", "/v1/feedback", {"json": {"question": "q", "answer": "a", "rating": 1}}),
    ("GET", "/v1/models", {}),
    ("POST", "/v1/chat/completions", {"json": {"model": "zhiku", "messages": [{"role": "user", "content": "leave?"}]}}),
)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
