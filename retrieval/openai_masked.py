"""The OpenAI-compatible client that masks personal data before a request leaves the process.

Its own module so that importing ``retrieval.llm`` does not import the ``openai`` SDK; loaded by
``retrieval.llm`` for ``llm = "openai"`` when ``pii`` is on.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.base.llms.types import ChatMessage
from llama_index.llms.openai_like import OpenAILike
from pydantic import PrivateAttr

from zhiku.pii import PiiMasker


class MaskingOpenAI(OpenAILike):
    """``OpenAILike`` that masks personal data in what it sends: the one seam every request to an
    external server passes (chat and completion, streamed or not, sync or async, whichever caller:
    answers, follow-up rewriting, summaries, the reranking judge, the LLM triple extractor)."""

    _masker: PiiMasker = PrivateAttr()

    def __init__(self, masker: PiiMasker, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._masker = masker

    def _masked(self, messages: Sequence[ChatMessage]) -> list[ChatMessage]:
        texts = self._masker.mask_many([m.content or "" for m in messages])
        return [ChatMessage(role=m.role, content=text) for m, text in zip(messages, texts)]

    def _chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Any:
        return super()._chat(self._masked(messages), **kwargs)

    def _stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Any:
        return super()._stream_chat(self._masked(messages), **kwargs)

    def _complete(self, prompt: str, **kwargs: Any) -> Any:
        return super()._complete(self._masker.mask(prompt), **kwargs)

    def _stream_complete(self, prompt: str, **kwargs: Any) -> Any:
        return super()._stream_complete(self._masker.mask(prompt), **kwargs)

    async def _achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Any:
        return await super()._achat(self._masked(messages), **kwargs)

    async def _astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> Any:
        return await super()._astream_chat(self._masked(messages), **kwargs)

    async def _acomplete(self, prompt: str, **kwargs: Any) -> Any:
        return await super()._acomplete(self._masker.mask(prompt), **kwargs)

    async def _astream_complete(self, prompt: str, **kwargs: Any) -> Any:
        return await super()._astream_complete(self._masker.mask(prompt), **kwargs)
