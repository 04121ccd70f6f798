"""The ``local`` backend: a causal LM on this machine's CPU as a llama-index ``LLM``.

One ``LocalLLM`` speaks llama-index's interface (chat template, ``complete``/``stream_chat``,
timeouts, token counting); the tokens come from one of two runtimes behind it:

* ``CT2Runtime`` — CTranslate2 with int8 weights: about 4x the tokens per second of transformers
  float32 on the same model and prompt (MODELS.md), so answers arrive in seconds. The default.
* ``TransformersRuntime`` — plain transformers float32: the fallback for models CTranslate2
  cannot convert.

Both decode greedily with a repetition penalty on the generated tokens only (small models fall into
loops without one; one that also counts the prompt stops a grounded answer from quoting its
passages), stop at the model's end token, and stop when the consumer stops reading.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from llama_index.core.base.llms.generic_utils import (
    completion_response_to_chat_response,
    stream_completion_response_to_chat_response,
)
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.llms import CustomLLM
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from pydantic import PrivateAttr

from zhiku.errors import LLMError

#: The context window used when neither the model nor the settings say (``llm_context_window``).
DEFAULT_CONTEXT_WINDOW = 4096
#: Penalty on tokens the model has already generated in this reply.
REPETITION_PENALTY = 1.15


class Runtime(Protocol):
    """Generates text for a prompt's token ids, one text delta at a time."""

    #: ``ctranslate2`` or ``transformers``: reported with answers (``--json``, the UI).
    name: str

    def stream(self, prompt_ids: list[int], max_new_tokens: int, deadline: float) -> Iterator[str]: ...


class LocalLLM(CustomLLM):
    """A local model as a llama-index LLM: greedy decoding, chat template, streaming, a time limit.

    Generation is serialised (one at a time: the CPU is the bottleneck anyway) and bounded by
    ``timeout_s``; a timed-out completion returns what it has with ``raw["timed_out"] = True``.
    A consumer that stops reading a stream stops the generation too.
    """

    model_name: str
    runtime_name: str = ""
    context_window: int = DEFAULT_CONTEXT_WINDOW
    max_new_tokens: int = 256
    timeout_s: float = 120.0

    _runtime: Any = PrivateAttr()
    _tokenizer: Any = PrivateAttr()
    _lock: Any = PrivateAttr()

    def __init__(self, runtime: Runtime, tokenizer: Any, **fields: Any) -> None:
        super().__init__(runtime_name=runtime.name, **fields)
        self._runtime = runtime
        self._tokenizer = tokenizer
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls, folder: Path, name: str, context_window: int, max_new_tokens: int, timeout_s: float,
        ct2: Path | None = None,
    ) -> LocalLLM:
        """The model of the transformers ``folder``, run by CTranslate2 from ``ct2`` when given."""
        from transformers import AutoConfig, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(folder))
            config = AutoConfig.from_pretrained(str(folder))
            runtime: Runtime = CT2Runtime(ct2, tokenizer) if ct2 is not None else TransformersRuntime(folder, tokenizer)
        except (OSError, ValueError, RuntimeError) as exc:
            raise LLMError(f"llm_model {name!r}: cannot load {ct2 or folder} ({exc})") from exc
        limit = int(getattr(config, "max_position_embeddings", 0) or context_window)
        return cls(
            runtime, tokenizer, model_name=name, context_window=min(context_window, limit),
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
        return chat_text(self._tokenizer, messages)

    def _complete_gen(self, prompt: str) -> CompletionResponseGen:
        started = time.perf_counter()
        deadline = started + self.timeout_s
        ids = self._tokenizer(prompt, add_special_tokens=False)["input_ids"]
        text = ""
        with self._lock:
            try:
                for delta in self._runtime.stream(list(ids), self.max_new_tokens, deadline):
                    text += delta
                    yield CompletionResponse(text=text, delta=delta)
            except LLMError:
                raise
            except Exception as exc:
                raise LLMError(f"local model {self.model_name!r} failed while generating: {exc}") from exc
        yield CompletionResponse(text=text, delta="", raw={"timed_out": time.perf_counter() >= deadline})

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


def chat_text(tokenizer: Any, messages: Sequence[ChatMessage]) -> str:
    """``messages`` in the model's chat template, ready for the reply.

    The one rendering of a conversation: generation feeds it to the model, and LoRA training
    (``tune.llm``) learns the reply after exactly this text, so training matches inference.
    """
    turns = [{"role": m.role.value, "content": m.content or ""} for m in messages]
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
    return "\n".join(f"{t['role']}: {t['content']}" for t in turns) + "\nassistant: "


def _end_ids(tokenizer: Any, config_eos: Any) -> list[int]:
    """The token ids that end a reply: the model's end-of-sequence ids and the tokenizer's."""
    ids = config_eos if isinstance(config_eos, list) else [config_eos]
    ids = [int(i) for i in ids if i is not None]
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(int(tokenizer.eos_token_id))
    return ids


class IncrementalDecoder:
    """Token ids in, text deltas out: decodes the whole reply each step and yields what is new.

    Byte-level tokenizers split a Chinese character across tokens; a decoded tail ending in the
    replacement character is held back until the character is complete.
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._ids: list[int] = []
        self._emitted = 0

    def push(self, token_id: int) -> str:
        self._ids.append(token_id)
        text = self._tokenizer.decode(self._ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return ""
        delta, self._emitted = text[self._emitted:], len(text)
        return delta


class CT2Runtime:
    """CTranslate2 int8 generation (``generate_tokens`` streams one step at a time)."""

    name = "ctranslate2"

    def __init__(self, folder: Path | None, tokenizer: Any) -> None:
        import ctranslate2
        from transformers import GenerationConfig

        assert folder is not None
        self._generator = ctranslate2.Generator(str(folder), device="cpu", compute_type="int8")
        self._tokenizer = tokenizer
        try:
            eos = GenerationConfig.from_pretrained(str(folder)).eos_token_id
        except OSError:
            eos = None
        self._end = _end_ids(tokenizer, eos)

    def stream(self, prompt_ids: list[int], max_new_tokens: int, deadline: float) -> Iterator[str]:
        decoder = IncrementalDecoder(self._tokenizer)
        steps = self._generator.generate_tokens(
            self._tokenizer.convert_ids_to_tokens(prompt_ids), max_length=max_new_tokens, sampling_topk=1,
            repetition_penalty=REPETITION_PENALTY, end_token=self._end,
        )
        try:
            for step in steps:
                if step.token_id in self._end:
                    return
                delta = decoder.push(step.token_id)
                if delta:
                    yield delta
                if time.perf_counter() >= deadline:
                    return
        finally:
            steps.close()  # stops the decoding in CTranslate2's worker


class TransformersRuntime:
    """transformers float32 generation in a worker thread, streamed through ``TextIteratorStreamer``."""

    name = "transformers"

    def __init__(self, folder: Path, tokenizer: Any) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        self._model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
        self._model.eval()
        self._tokenizer = tokenizer

    def stream(self, prompt_ids: list[int], max_new_tokens: int, deadline: float) -> Iterator[str]:
        import torch
        from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        stop = threading.Event()

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                return stop.is_set()

        inputs = torch.tensor([prompt_ids])
        streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
        failure: list[BaseException] = []

        def work() -> None:
            with torch.inference_mode():
                try:
                    self._model.generate(
                        input_ids=inputs, attention_mask=torch.ones_like(inputs), streamer=streamer,
                        max_new_tokens=max_new_tokens, do_sample=False,
                        logits_processor=LogitsProcessorList([
                            _GeneratedRepetitionPenalty(inputs.shape[1], REPETITION_PENALTY)]),
                        max_time=max(0.0, deadline - time.perf_counter()),
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
            raise failure[0]


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
