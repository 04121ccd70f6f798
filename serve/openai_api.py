"""The OpenAI chat-completions dialect: models, the conversation in, completions and chunks out.

Clients built for OpenAI (its SDK, Open WebUI, LibreChat) pick a "model": ``zhiku`` answers in the
configured retrieval mode, ``zhiku-<mode>`` in that mode. The last user message is the question and
the earlier user/assistant pairs the conversation (follow-ups are made standalone by the Assistant);
system prompts are ignored, since the grounded prompt is Zhiku's own. A reply's text ends with its
sources, so any client shows them, and the body also carries them as ``citations``.
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from retrieval.llm import estimate_tokens
from retrieval.payloads import citation_json, sources_text
from serve.schemas import ChatMessage
from zhiku.errors import UsageError, ZhikuError
from zhiku.records import Answer

MODEL = "zhiku"


class UnknownModel(ZhikuError):
    """The request names a model this server does not offer."""


def models(modes: Sequence[str]) -> dict[str, Any]:
    """``GET /v1/models``: ``zhiku`` and ``zhiku-<mode>``."""
    names = [MODEL, *(f"{MODEL}-{m}" for m in modes)]
    return {"object": "list", "data": [{"id": n, "object": "model", "created": 0, "owned_by": "zhiku"} for n in names]}


def mode_of(model: str, modes: Sequence[str]) -> str | None:
    """The retrieval mode a model name asks for (None: the configured one)."""
    if model == MODEL:
        return None
    if model.startswith(MODEL + "-") and model[len(MODEL) + 1:] in modes:
        return model[len(MODEL) + 1:]
    raise UnknownModel(f"no model {model!r}: use {MODEL!r} or {MODEL}-<mode> with a mode of {', '.join(modes)} "
                       "(`GET /v1/models` lists them)")


def conversation(messages: Sequence[ChatMessage]) -> tuple[str, list[Answer]]:
    """The question (the last message, from the user) and the earlier turns as answers, oldest first."""
    turns = [m for m in messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user" or not turns[-1].text().strip():
        raise UsageError("the last message must be the user's question (role \"user\", non-empty content)")
    history: list[Answer] = []
    question = ""
    for message in turns[:-1]:
        if message.role == "user":
            question = message.text()
        elif question:
            history.append(Answer(text=message.text(), question=question))
            question = ""
    return turns[-1].text(), history


def _content(answer: Answer) -> str:
    sources = sources_text(answer)
    return answer.text + ("\n" + sources if sources else "")


def _usage(question: str, answer: Answer) -> dict[str, int]:
    prompt = estimate_tokens(question)
    completion = answer.timing.tokens or estimate_tokens(answer.text)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion(completion_id: str, model: str, question: str, answer: Answer) -> dict[str, Any]:
    """A ``chat.completion`` object for a finished answer."""
    return {
        "id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": _content(answer)},
                     "finish_reason": "stop"}],
        "usage": _usage(question, answer),
        "citations": citation_json(answer),
    }


def completion_chunks(completion_id: str, model: str, items: Iterable[str | Answer | dict[str, Any]]
                      ) -> Iterator[dict[str, Any] | str]:
    """``chat.completion.chunk`` objects: the role, each piece of text, the sources, the end, ``[DONE]``.

    A failure mid-stream (an ``{"error"}`` item) is sent as OpenAI servers send it: an error object.
    """
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        return {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}

    yield chunk({"role": "assistant", "content": ""})
    for item in items:
        if isinstance(item, str):
            if item:
                yield chunk({"content": item})
        elif isinstance(item, Answer):
            sources = sources_text(item)
            if sources:
                yield chunk({"content": "\n" + sources})
            yield chunk({}, "stop", citations=citation_json(item))
        else:
            yield item
    yield "[DONE]"
