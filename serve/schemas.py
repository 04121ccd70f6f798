"""Request bodies of the service API (responses use the CLI's JSON shapes, ``retrieval.payloads``)."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Longest text accepted in one field (questions are also checked by ``retrieval.factory.check_query``).
MAX_TEXT = 20_000
#: Row ids are SQLite integers: anything outside 1..2**63-1 names nothing (and must not reach SQLite).
MAX_ID = 2**63 - 1
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]


class SearchRequest(BaseModel):
    """``zhiku search``'s arguments: the query, the retrieval mode and the number of hits."""

    model_config = ConfigDict(extra="forbid")
    query: str = Field(max_length=MAX_TEXT)
    mode: str | None = Field(None, description="vector, keyword, graph, hybrid or hybrid+rerank")
    k: int | None = Field(None, ge=1, le=100)


class Turn(BaseModel):
    """An earlier exchange of the conversation: the question and the answer given."""

    question: str = Field(max_length=MAX_TEXT)
    answer: str = Field(max_length=MAX_TEXT)


class AskRequest(BaseModel):
    """``zhiku ask``'s arguments, the conversation so far, and whether to stream (server-sent events)."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(max_length=MAX_TEXT)
    mode: str | None = None
    k: int | None = Field(None, ge=1, le=100)
    stream: bool = False
    history: list[Turn] = Field(default_factory=list, max_length=50)


class FeedbackRequest(BaseModel):
    """A rating of an answer; ``chunk_ids`` are the cited passages, ``[1]`` first."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(max_length=MAX_TEXT)
    answer: str = Field(max_length=MAX_TEXT)
    rating: Literal[1, -1]
    comment: str = Field("", max_length=MAX_TEXT)
    chunk_ids: list[RowId] = Field(default_factory=list, max_length=100)


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str = ""


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content if p.type == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """The OpenAI chat-completions request; sampling options other clients send are accepted and ignored
    (the answer backend's settings apply)."""

    model_config = ConfigDict(extra="allow")
    model: str = "zhiku"
    messages: list[ChatMessage] = Field(min_length=1, max_length=100)
    stream: bool = False
