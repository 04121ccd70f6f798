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
from typing import Any
from zhiku.errors import SettingsError

CONFIG_NAME = "zhiku.toml"
ENV_PREFIX = "ZHIKU_"



@dataclass(frozen=True)
class Settings:
    kb: Path = Path("zhiku-kb")
    #: ``minilm`` (all-MiniLM-L6-v2), ``multilingual`` (Universal Sentence Encoder, for Chinese) or a
    #: path to a sentence-transformers folder. Empty: the knowledge base's own model (``minilm`` for a
    #: new one), so commands reopen a knowledge base without repeating the choice.
    embedding_model: str = ""
    #: Chunk budget in the embedding model's tokens; never above the model's own maximum.
    chunk_tokens: int = 200
    chunk_overlap: int = 32
    embed_batch_size: int = 32
    #: Parser worker processes; 0 means "one less than the cores, at least one".
    workers: int = 0
    #: A file whose parse takes longer (wall clock) is reported as failed and its worker killed.
    parse_timeout_s: float = 120.0
    #: Memory (address space, MiB) a parse may use on top of its worker's warm start; 0: no cap.
    parse_memory_mb: int = 2048
    #: Triple extractor run during ingest: ``default`` (offline), ``llm``, or ``none``.
    extractor: str = "default"
    #: Answer backend: ``extractive`` (no LLM), ``local`` (GGUF or model folder) or ``openai``.
    llm: str = "extractive"
    llm_model: str = ""
    llm_timeout_s: float = 120.0
    llm_max_new_tokens: int = 256
    openai_base_url: str = "http://127.0.0.1:8000/v1"
    openai_model: str = ""
    openai_api_key: str = ""
    #: ``none``, ``llm`` (the LLM as relevance judge) or a path to a sentence-transformers CrossEncoder.
    reranker: str = "none"
    mode: str = "hybrid"
    top_k: int = 5
    #: Reciprocal-rank-fusion weight of each retriever in ``hybrid``. The graph retriever is
    #: strong on relations but imprecise alone: at equal weight it pulled hybrid below BM25 on the
    #: sample evaluation set (eval/reports/README.md), so it counts a quarter by default.
    fusion_weights: Mapping[str, float] = field(
        default_factory=lambda: {"vector": 1.0, "keyword": 1.0, "graph": 0.25}
    )
    #: The LLM's context window in tokens; prompts are budgeted to fit it.
    llm_context_window: int = 4096
    #: Where converted local models live (default ``~/.cache/zhiku/models``).
    model_cache: str = ""
    #: Members of this group may ingest from the UI.
    admin_group: str = "admin"

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
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for name, raw in values.items():
            if name not in known:
                raise SettingsError(
                    f"unknown setting {name!r}; the settings are: {', '.join(sorted(known))} (see README, Configuration)"
                )
            kwargs[name] = _coerce(name, raw, known[name].type)
        if "fusion_weights" in kwargs:  # a partial table refines the defaults
            kwargs["fusion_weights"] = {**cls().fusion_weights, **_weights(kwargs["fusion_weights"])}
        return cls(**kwargs)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML ({exc}); fix the file or remove it") from exc
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


def _coerce(name: str, raw: Any, type_name: Any) -> Any:
    kind = str(type_name)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "Path":
            return Path(raw)
        if kind == "str":
            return str(raw)
    except (TypeError, ValueError) as exc:
        raise SettingsError(
            f"setting {name!r} (or {ENV_PREFIX}{name.upper()}) must be {kind}, got {raw!r}"
        ) from exc
    return raw
