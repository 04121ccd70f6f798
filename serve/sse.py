"""Server-sent events: how streamed answers are framed, and how a failure mid-stream is reported.

Once the first event is sent the status line is gone, so a failure later can only be told inside
the stream: ``guarded`` turns it into one final error item (the message for a ``ZhikuError``, a
reference id for a bug) instead of a silently cut connection.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from zhiku.errors import USER_ERRORS, bug_message

T = TypeVar("T")

#: No proxy buffering (nginx) or caching of a live stream.
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def event(name: str, payload: Any) -> str:
    """One named event: ``event: NAME`` and its JSON ``data`` line."""
    return f"event: {name}\ndata: {json.dumps(payload, ensure_ascii=False, default=str)}\n\n"


def data(payload: Any) -> str:
    """One unnamed event (the OpenAI stream's framing); a string payload is sent as is (``[DONE]``)."""
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, default=str)
    return f"data: {text}\n\n"


def guarded(items: Iterable[T], log: logging.Logger) -> Iterator[T | dict[str, Any]]:
    """``items``, then, if producing them fails, one ``{"error": {"type", "message"}}`` item and the end."""
    try:
        yield from items
    except USER_ERRORS as exc:
        yield {"error": {"type": type(exc).__name__, "message": str(exc)}}
    except Exception as exc:  # a bug: logged with its traceback, the client gets the reference
        yield {"error": {"type": "InternalError", "message": bug_message(log, "a streamed answer", exc)}}


def parse(text: str) -> list[tuple[str, str]]:
    """(event name, data) of each event in a stream's text (name ``message`` when unnamed): for clients and tests."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        name, lines = "message", []
        for line in block.split("\n"):
            if line.startswith(":") or not line:
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                lines.append(value)
        if lines:
            events.append((name, "\n".join(lines)))
    return events
