"""The ``openai`` SDK, unchanged, against a live ``zhiku serve`` app on a loopback port: models, chat
(whole and streamed) with citations, errors as the SDK's exceptions, and no leaks across groups."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

openai = pytest.importorskip("openai")

from leak_probe import FINANCE_MARKER, FINANCE_USER, PUBLIC_USER, assert_no_marker  # noqa: E402
from live_server import live_server  # noqa: E402

pytestmark = pytest.mark.integration

QUESTION = "How many days of annual leave do employees get?"


@pytest.fixture(scope="module")
def base_url(service_settings) -> Iterator[str]:
    from retrieval.assistant import Assistant
    from serve.app import create_app

    with live_server(create_app(Assistant.open(service_settings), owns_assistant=True)) as url:
        yield url + "/v1"


def sdk(base_url: str, key: str) -> "openai.OpenAI":
    return openai.OpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=60)


def test_the_sdk_lists_the_models(base_url: str, keys: dict[str, str]) -> None:
    ids = [m.id for m in sdk(base_url, keys["pat"]).models.list()]
    assert ids[0] == "zhiku" and "zhiku-hybrid" in ids


def test_the_sdk_gets_a_cited_answer(base_url: str, keys: dict[str, str]) -> None:
    reply = sdk(base_url, keys["pat"]).chat.completions.create(
        model="zhiku", messages=[{"role": "user", "content": QUESTION}])
    content = reply.choices[0].message.content
    assert "30 days" in content and "[1]" in content and "Sources:" in content
    assert reply.model_extra["citations"][0]["n"] == 1 and reply.usage.completion_tokens > 0


def test_the_sdk_streams_an_answer(base_url: str, keys: dict[str, str]) -> None:
    stream = sdk(base_url, keys["pat"]).chat.completions.create(
        model="zhiku-keyword", stream=True, messages=[{"role": "user", "content": QUESTION}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "30 days" in text and "Sources:" in text and chunks[-1].choices[0].finish_reason == "stop"


def test_the_sdk_raises_its_own_errors(base_url: str, keys: dict[str, str]) -> None:
    with pytest.raises(openai.AuthenticationError):
        sdk(base_url, "zk_wrong").models.list()
    with pytest.raises(openai.NotFoundError, match="no model"):
        sdk(base_url, keys["pat"]).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])


def test_a_follow_up_keeps_the_conversation_and_groups_apply(base_url: str, keys: dict[str, str]) -> None:
    messages = [{"role": "user", "content": "Which company does Kestrel Robotics plan to acquire?"}]
    for user, sees in ((PUBLIC_USER, False), (FINANCE_USER, True)):
        reply = sdk(base_url, keys[user.name]).chat.completions.create(model="zhiku", messages=messages)
        text = reply.choices[0].message.content + str(reply.model_extra["citations"])
        assert_no_marker(text, user)
        assert (FINANCE_MARKER in text) == sees
    follow_up = [*messages, {"role": "assistant", "content": reply.choices[0].message.content},
                 {"role": "user", "content": "What is it valued at?"}]
    reply = sdk(base_url, keys["finn"]).chat.completions.create(model="zhiku", messages=follow_up)
    assert "finance/acquisition.md" in str(reply.model_extra["citations"])  # "it" resolved from the conversation
