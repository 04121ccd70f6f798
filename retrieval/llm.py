"""LLM backends behind llama-index's ``LLM`` interface, chosen by ``settings.llm``.

* ``auto`` (the default) — the local model ``llm_model`` names when set (``zhiku tune llm`` records
  the model it kept there), else the best installed packaged answering model (``qwen1.5b``, then
  ``qwen0.5b``) run locally, else ``extractive``.
* ``local`` — a packaged model, a GGUF file or a Hugging Face model folder on this machine's CPU
  (``retrieval.local_llm``; files and conversions in ``retrieval.local_models``), by default through
  CTranslate2 int8, falling back to transformers for models it cannot convert.
* ``openai`` — any OpenAI-compatible server (vLLM, llama.cpp server, Ollama's /v1) through
  llama-index's ``OpenAILike``; with ``pii`` on, ``MaskingOpenAI`` (``retrieval.openai_masked``) masks personal data in every
  request before it leaves the process (prompts, passages, questions, summaries' parts).
* ``extractive`` — no LLM at all (``load_llm`` returns None); answers are cited supporting sentences.

Failures while generating are not raised to users as tracebacks: ``describe_failure`` turns them
into one line that says what to do; ``ReplyStream`` is the one loop that reads a streamed reply
under a time limit.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrieval.local_models import best_installed, ct2_folder, resolve_local_model
from zhiku.errors import LLMError
from zhiku.models import model_cache_dir
from zhiku.pii import PiiMasker
from zhiku.settings import Settings
from zhiku.text import count_cjk

if TYPE_CHECKING:  # llama-index takes seconds to import: only code that has an LLM needs it
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.llms import LLM

    from retrieval.local_llm import LocalLLM

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------ loading
def context_window(settings: Settings) -> int:
    """The prompt window to assume: ``llm_context_window`` from zhiku.toml, else 4096."""
    return int(settings.llm_context_window)


def _load_extractive(settings: Settings, masker: PiiMasker | None) -> None:
    return None


def _load_local(settings: Settings, masker: PiiMasker | None = None) -> LocalLLM:
    """The local model, run by CTranslate2 unless ``llm_runtime`` says transformers.

    With ``llm_runtime = "auto"`` a model CTranslate2 cannot convert falls back to transformers
    (logged); asking for ``ctranslate2`` explicitly makes that an error instead.
    """
    from retrieval.local_llm import LocalLLM

    cache = Path(settings.model_cache or model_cache_dir()).expanduser()
    name = settings.llm_model or best_installed() or ""
    folder = resolve_local_model(name, cache)
    ct2 = None
    if settings.llm_runtime != "transformers":
        try:
            ct2 = ct2_folder(folder, cache)
        except LLMError as exc:
            if settings.llm_runtime == "ctranslate2":
                raise
            log.warning("%s; generating with transformers instead", exc)
    return LocalLLM.open(
        folder, name, context_window(settings), settings.llm_max_new_tokens, settings.llm_timeout_s, ct2=ct2
    )


def _load_auto(settings: Settings, masker: PiiMasker | None) -> LLM | None:
    """The model ``llm_model`` names (a model ``zhiku tune llm`` kept is recorded there), else the
    best installed answering model (qwen1.5b, then qwen0.5b), else the extractive backend."""
    chosen = settings.llm_model or best_installed()
    return _load_local(settings.replace(llm="local", llm_model=chosen)) if chosen else None


def _load_openai(settings: Settings, masker: PiiMasker | None) -> LLM:
    """The OpenAI-compatible client; masking (``masker``, else a new one) whenever ``pii`` is on."""
    from llama_index.llms.openai_like import OpenAILike

    from retrieval.openai_masked import MaskingOpenAI

    if not settings.openai_model:
        raise LLMError("llm = 'openai' needs openai_model (the model name the server serves; ZHIKU_OPENAI_MODEL)")
    options: dict[str, Any] = dict(
        model=settings.openai_model,
        api_base=settings.openai_base_url.rstrip("/"),
        api_key=settings.openai_api_key or "not-needed",
        is_chat_model=True,
        context_window=context_window(settings),
        max_tokens=settings.llm_max_new_tokens,
        temperature=0.1,
        timeout=settings.llm_timeout_s,
        max_retries=0,
    )
    if settings.pii == "off":
        return OpenAILike(**options)
    return MaskingOpenAI(masker or PiiMasker(), **options)


_LOADERS: dict[str, Callable[[Settings, PiiMasker | None], LLM | None]] = {
    "auto": _load_auto,
    "extractive": _load_extractive,
    "local": _load_local,
    "openai": _load_openai,
}


def load_llm(settings: Settings, masker: PiiMasker | None = None) -> LLM | None:
    """The LLM ``settings.llm`` names, or None for the extractive backend (no generation).

    ``masker``: the one to mask requests to an ``openai`` backend with when ``pii`` is on (the
    ``Assistant`` passes its own; without one a new one is made).
    """
    return _LOADERS[settings.llm](settings, masker)


def describe_llm(llm: LLM | None) -> dict[str, str]:
    """Which backend, model and runtime answer: shown in the UI sidebar and ``zhiku ask --json``."""
    if llm is None:
        return {"backend": "extractive", "model": "", "runtime": ""}
    from retrieval.local_llm import LocalLLM  # loaded already: an LLM exists

    if isinstance(llm, LocalLLM):
        return {"backend": "local", "model": llm.model_name, "runtime": llm.runtime_name}
    return {"backend": "openai", "model": getattr(llm, "model", ""), "runtime": getattr(llm, "api_base", "")}


def token_counter(llm: LLM | None) -> Callable[[str], int]:
    """Count tokens with the model's own tokenizer when we have it, else a conservative estimate."""
    count = getattr(llm, "count_tokens", None)
    return count if callable(count) else estimate_tokens


def estimate_tokens(text: str) -> int:
    """An upper-bound guess for unknown tokenizers: one token per CJK character, one per 3 other characters."""
    cjk = count_cjk(text)
    return cjk + (len(text) - cjk + 2) // 3


def describe_failure(exc: BaseException, llm: LLM | None) -> str:
    """One line for a failed generation, naming the server or model and what to do."""
    import openai

    url = getattr(llm, "api_base", "")
    timeout = getattr(llm, "timeout", None) or getattr(llm, "timeout_s", None)
    if isinstance(exc, openai.APITimeoutError):
        return f"the LLM server at {url} did not answer within {timeout:g} s (llm_timeout_s)"
    if isinstance(exc, openai.APIConnectionError):
        return f"cannot reach the LLM server at {url}: {exc.__cause__ or exc}; start it or set openai_base_url"
    if isinstance(exc, openai.APIStatusError):
        return (f"the LLM server at {url} answered HTTP {exc.status_code}: {exc.message}; "
                "check openai_model and openai_api_key")
    if isinstance(exc, LLMError):
        return str(exc)
    return f"the LLM failed ({type(exc).__name__}: {exc})"


class ReplyStream:
    """The text deltas of one chat reply, cut short at ``timeout_s`` or once ``enough(text)`` says so.

    Every caller of ``stream_chat`` needs the same care: stop a model that runs too long (the local
    backend also reports its own timeout in ``raw``), stop once the caller has what it wants, and
    close the backend stream either way so a worker thread or an HTTP response is not left running.
    Iterate it once; afterwards ``text`` holds the whole reply and ``timed_out`` says whether it was cut.
    Backend errors propagate to the caller, which decides the fallback.
    """

    def __init__(
        self, llm: LLM, messages: Sequence[ChatMessage], timeout_s: float,
        enough: Callable[[str], bool] | None = None,
    ) -> None:
        self.llm, self.messages, self.timeout_s, self.enough = llm, list(messages), timeout_s, enough
        self.text = ""
        self.timed_out = False

    def __iter__(self) -> Iterator[str]:
        started = time.perf_counter()
        stream = None
        try:
            stream = self.llm.stream_chat(self.messages)
            for response in stream:
                delta = response.delta or ""
                self.text += delta
                if delta:
                    yield delta
                local_timeout = isinstance(response.raw, dict) and response.raw.get("timed_out")
                if local_timeout or time.perf_counter() - started > self.timeout_s:
                    self.timed_out = True
                    return
                if self.enough is not None and self.enough(self.text):
                    return
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
