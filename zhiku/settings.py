"""One typed settings object, read from ``zhiku.toml`` and ``ZHIKU_*`` environment variables.

Precedence, lowest first: the defaults below, ``zhiku.toml`` in the current folder, ``zhiku.toml``
inside the knowledge base folder, environment variables, then explicit overrides (CLI flags). The
object is immutable and passed explicitly; nothing reads settings from a global.
"""
from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints
from zhiku.errors import SettingsError

CONFIG_NAME = "zhiku.toml"
ENV_PREFIX = "ZHIKU_"



#: The retrieval modes: one retriever each, or the fused ``hybrid``, optionally reranked.
Mode = Literal["vector", "keyword", "graph", "hybrid", "hybrid+rerank"]
#: Answer backends: ``auto`` (the best installed local model, else extractive), ``extractive`` (no
#: LLM), ``local`` (a packaged model, GGUF or model folder) or ``openai``.
LlmBackend = Literal["auto", "extractive", "local", "openai"]
#: How a local model runs: CTranslate2 int8 (fast), transformers float32, or ``auto`` (CTranslate2
#: when it can convert the model).
LlmRuntime = Literal["auto", "ctranslate2", "transformers"]
#: Triple extractors run during ingest: ``default`` (offline), ``llm``, or ``none``.
ExtractorName = Literal["default", "llm", "none"]
#: Personal-data masking (``zhiku.pii``): ``off``; ``mask-answers`` (what leaves the Assistant, and
#: what is sent to an ``openai`` backend); ``mask-ingest`` (that, and ingest stores only masked text).
PiiMode = Literal["off", "mask-answers", "mask-ingest"]
#: How ``hybrid`` fuses its retrievers: ``score`` (convex combination of min-max normalised scores)
#: or ``rrf`` (weighted reciprocal rank fusion, ranks only).
FusionMethod = Literal["score", "rrf"]
#: Scanned PDF pages and images: ``auto`` reads pages without a usable text layer, and images, by OCR
#: (``ingest.ocr``); ``off`` leaves them out (a scanned PDF fails, images are not ingested).
OcrMode = Literal["auto", "off"]

MODES: tuple[str, ...] = get_args(Mode)
LLM_BACKENDS: tuple[str, ...] = get_args(LlmBackend)
EXTRACTORS: tuple[str, ...] = get_args(ExtractorName)
FUSION_METHODS: tuple[str, ...] = get_args(FusionMethod)


@dataclass(frozen=True)
class Settings:
    kb: Path = Path("zhiku-kb")
    #: Where the knowledge base's truth lives: ``folder`` (SQLite and FAISS inside ``kb``) or a
    #: ``postgresql://`` connection string (a PostgreSQL database with pgvector, shared by every
    #: process that names it; ``kb`` then holds only derived, rebuildable indexes). README, Shared store.
    store: str = "folder"
    #: ``minilm`` (all-MiniLM-L6-v2), ``multilingual`` (Universal Sentence Encoder, for Chinese) or a
    #: path to a sentence-transformers folder. Empty: the knowledge base's own model (``minilm`` for a
    #: new one), so commands reopen a knowledge base without repeating the choice.
    embedding_model: str = ""
    #: Chunk budget in the embedding model's tokens; never above the model's own maximum.
    chunk_tokens: int = 200
    chunk_overlap: int = 32
    embed_batch_size: int = 32
    #: Chunks from which the vector index is approximate (IVF with calibrated probes, recall@10
    #: against exact >= 0.98: ``zhiku.vector_index``, bench/results/scale.md); below it, exact.
    #: Takes effect when the index is next loaded or built.
    ann_threshold: int = 200_000
    #: Parser worker processes; 0 means "one less than the cores, at least one".
    workers: int = 0
    #: A file whose parse takes longer (wall clock) is reported as failed and its worker killed.
    parse_timeout_s: float = 120.0
    #: Memory (address space, MiB) a parse may use on top of its worker's warm start; 0: no cap.
    parse_memory_mb: int = 2048
    #: OCR of scanned PDF pages and images (see ``OcrMode`` and README, Scanned documents).
    ocr: OcrMode = "auto"
    #: Triple extractor run during ingest: ``default`` (offline), ``llm``, or ``none``.
    extractor: ExtractorName = "default"
    #: Answer backend (see ``LlmBackend``); ``auto`` picks llm_model when set, else qwen1.5b > qwen0.5b > extractive.
    llm: LlmBackend = "auto"
    #: ``smollm2``, ``qwen0.5b``, ``qwen1.5b``, a .gguf file or a model folder (empty: the best installed).
    #: ``zhiku tune llm`` writes the folder of the model it kept into the knowledge base's zhiku.toml.
    llm_model: str = ""
    llm_runtime: LlmRuntime = "auto"
    llm_timeout_s: float = 120.0
    llm_max_new_tokens: int = 256
    openai_base_url: str = "http://127.0.0.1:8000/v1"
    openai_model: str = ""
    openai_api_key: str = ""
    #: ``none``, ``llm`` (the LLM as relevance judge) or a path to a sentence-transformers CrossEncoder.
    reranker: str = "none"
    mode: Mode = "hybrid"
    top_k: int = 5
    #: How ``hybrid`` fuses (global default ``score``: min-max normalised score combination, which
    #: beat reciprocal rank fusion on every development set measured; ``rrf`` for ranks only).
    fusion_method: FusionMethod = "score"
    #: Each retriever's weight in ``hybrid`` (relative: they are divided by their sum), over the
    #: defaults for the knowledge base's embedder (``retrieval.fusion.default_weights``): a partial
    #: table such as ``{graph = 0.5}`` changes those weights only. ``zhiku tune fusion`` writes
    #: weights chosen for one knowledge base into its zhiku.toml.
    fusion_weights: Mapping[str, float] = field(default_factory=dict)
    #: Whether a question with quoted terms or identifiers (``INV-2024-0042``) leans on keyword
    #: search (``retrieval.adapt``).
    fusion_adapt: bool = True
    #: The LLM's context window in tokens; prompts are budgeted to fit it.
    llm_context_window: int = 4096
    #: Where converted local models live (default ``~/.cache/zhiku/models``).
    model_cache: str = ""
    #: Members of this group may ingest from the UI.
    admin_group: str = "admin"
    #: A knowledge base without users is normally used by one local user who sees everything; with
    #: this on, the UI lets nobody in until an admin is created (`zhiku user add NAME --groups admin`).
    require_sign_in: bool = False
    #: Minutes without a page run after which the UI signs the browser session out.
    session_idle_minutes: int = 30
    #: Largest file the UI accepts for upload, in MiB.
    upload_max_mb: int = 200
    #: Server folders an admin may ingest or evaluate from in the UI (symlinks and ``..`` resolved
    #: first); empty: server-folder ingest and evaluation runs are off. ``ZHIKU_UI_INGEST_ROOTS``
    #: separates folders with the path separator (``:``).
    ui_ingest_roots: tuple[str, ...] = ()
    #: Whether the audit log keeps the text of questions (the user, time and mode are always kept).
    audit_questions: bool = True
    #: Personal-data masking (see ``PiiMode`` and README, Personal data).
    pii: PiiMode = "off"
    #: The service API's per-key rate limit: requests per second on average, and the burst allowed
    #: above it (a token bucket per key and worker process).
    api_rate_per_s: float = 5.0
    api_rate_burst: int = 20

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Settings:
        """Resolve settings from files, environment and overrides (``None`` overrides are ignored)."""
        env = os.environ if env is None else env
        cwd = Path.cwd() if cwd is None else cwd
        given = {k: v for k, v in (overrides or {}).items() if v is not None}
        values: dict[str, Any] = {}
        values.update(_read_toml(cwd / CONFIG_NAME))
        env_values = {
            f.name: env[ENV_PREFIX + f.name.upper()]
            for f in fields(cls)
            if ENV_PREFIX + f.name.upper() in env
        }
        kb = Path(given.get("kb") or env_values.get("kb") or values.get("kb") or cls.kb)
        values.update(_read_toml(kb / CONFIG_NAME))
        values.update(env_values)
        values.update(given)
        values["kb"] = kb
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        known = get_type_hints(cls)
        kwargs: dict[str, Any] = {}
        for name, raw in values.items():
            if name not in known:
                raise SettingsError(
                    f"unknown setting {name!r}; the settings are: {', '.join(sorted(known))} (see README, Configuration)"
                )
            kwargs[name] = _coerce(name, raw, known[name])
        if "fusion_weights" in kwargs:
            kwargs["fusion_weights"] = _weights(kwargs["fusion_weights"])
        return cls(**kwargs)

    def __post_init__(self) -> None:
        """Every choice setting holds one of its choices, however the object was made."""
        for name, hint in get_type_hints(type(self)).items():
            if _is_literal(hint):
                check_choice(name, getattr(self, name), hint)
        if self.store != "folder" and not self.store.startswith(("postgresql://", "postgres://")):
            raise SettingsError(
                f"setting 'store' (or {ENV_PREFIX}STORE) must be 'folder' or a postgresql:// connection string, "
                f"got {self.store!r}")
        if self.ann_threshold < 1:
            raise SettingsError(f"setting 'ann_threshold' must be a number of chunks >= 1, got {self.ann_threshold}")

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

def save_kb_settings(kb: Path, changes: Mapping[str, Any]) -> Path:
    """Set ``changes`` in ``<kb>/zhiku.toml`` (atomically), keeping its other settings; returns the file.

    The file is rewritten from its parsed values, so comments in it are not kept. A file with a
    ``[zhiku]`` table keeps that layout.
    """
    from zhiku.kb import atomic_write

    path = kb / CONFIG_NAME
    data = _parse_toml(path)
    table = data["zhiku"] if isinstance(data.get("zhiku"), dict) else data
    Settings.from_mapping({**table, **changes})  # refuse to write what would not load
    table.update(changes)
    atomic_write(path, lambda tmp: tmp.write_text(_to_toml(data), encoding="utf-8"))
    return path


def _to_toml(data: Mapping[str, Any]) -> str:
    """Settings values as TOML: scalars, lists and inline tables at the top, then ``[tables]``."""
    tables = {k: v for k, v in data.items() if isinstance(v, dict) and k == "zhiku"}
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items() if k not in tables]
    for name, table in tables.items():
        lines += ["", f"[{_toml_key(name)}]", *(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items())]
    return "\n".join(lines).lstrip("\n") + "\n"


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else _toml_value(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise SettingsError(f"cannot write {value!r} to {CONFIG_NAME}: only text, numbers, yes/no, lists and tables")


def _parse_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML ({exc}); fix the file or remove it") from exc


def _read_toml(path: Path) -> dict[str, Any]:
    data = _parse_toml(path)
    return dict(data.get("zhiku", data))


def _weights(raw: Any) -> dict[str, float]:
    if isinstance(raw, str):  # from the environment: ZHIKU_FUSION_WEIGHTS="graph=0.5,vector=1"
        raw = dict(part.split("=", 1) for part in raw.split(",") if "=" in part)
    if not isinstance(raw, Mapping):
        raise SettingsError(f"setting 'fusion_weights' must be a table like {{vector = 1.0, graph = 0.5}}, got {raw!r}")
    try:
        return {str(name).strip(): float(weight) for name, weight in raw.items()}
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting 'fusion_weights': every weight must be a number ({exc})") from exc


def _is_literal(hint: Any) -> bool:
    return getattr(hint, "__origin__", None) is Literal


def check_choice(name: str, value: Any, hint: Any) -> str:
    """``value`` when it is one of the choices of the ``Literal`` ``hint``, else a ``SettingsError``."""
    choices = get_args(hint)
    if value not in choices:
        raise SettingsError(
            f"setting {name!r} (or {ENV_PREFIX}{name.upper()}) must be one of: {', '.join(choices)}; got {value!r}"
        )
    return str(value)


def check_mode(mode: str) -> Mode:
    """A retrieval mode asked for per request (CLI flag, UI, API), checked like the ``mode`` setting."""
    return check_choice("mode", mode, Mode)  # type: ignore[return-value]


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a yes/no value: {raw!r}")


def _strings(raw: Any) -> tuple[str, ...]:
    """A list from TOML, or ``os.pathsep``-separated text from the environment (folder lists)."""
    return tuple(str(p) for p in (raw.split(os.pathsep) if isinstance(raw, str) else raw) if str(p))


#: How a value from TOML or the environment (always a string there) becomes each field's type.
_CONVERT: dict[Any, Any] = {int: int, float: float, str: str, Path: Path, bool: _boolean, tuple[str, ...]: _strings}


def _coerce(name: str, raw: Any, hint: Any) -> Any:
    """``raw`` as the field's type (choices are checked by ``Settings.__post_init__``)."""
    convert = _CONVERT.get(hint)
    if convert is None:
        return raw
    try:
        return convert(raw)
    except (TypeError, ValueError) as exc:
        raise SettingsError(
            f"setting {name!r} (or {ENV_PREFIX}{name.upper()}) must be {hint.__name__}, got {raw!r}"
        ) from exc
