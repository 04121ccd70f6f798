"""Leak probe for ``zhiku tune pairs`` / ``embedder``: a tuned embedder serves every user of the
knowledge base, so by default no restricted document reaches its training or held-out pairs
(queries, positives or negatives), nor the pairs file, nor what the command prints."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from cli_runner import run_zhiku
from leak_probe import PUBLIC_USER, assert_no_marker

from tune.pairs import build_pairs, chunk_texts, pairs_path
from zhiku.kb import KnowledgeBase
from zhiku.records import User
from zhiku.settings import Settings


def test_training_pairs_hold_no_restricted_text(leak_kb: Path, embedder, tmp_path: Path, capsys, monkeypatch):
    with KnowledgeBase.open(leak_kb, embedder.name) as kb:
        pairs = build_pairs(kb, Settings(kb=leak_kb), n=100, embedder=embedder)
        every = pairs.train + pairs.holdout
        texts = chunk_texts(kb, [i for p in every for i in (p.positive, *p.negatives)])
    assert every  # the public handbook gives pairs
    text = " ".join([p.query for p in every] + list(texts.values()))
    assert_no_marker(text, PUBLIC_USER)
    assert_no_marker(text, User("nobody"))

    copy = tmp_path / "kb"
    shutil.copytree(leak_kb, copy)
    code, out, err = run_zhiku(capsys, monkeypatch, "tune", "pairs", "--kb", str(copy), "--n", "100", "--json")
    assert code == 0, err
    assert_no_marker(out + err, User("nobody"))
    saved = [json.loads(line) for line in pairs_path(copy).read_text(encoding="utf-8").splitlines()]
    with KnowledgeBase.open(copy, embedder.name) as kb:
        chunks = chunk_texts(kb, [i for row in saved for i in (row["positive"], *row["negatives"])])
    assert_no_marker(" ".join([r["query"] for r in saved] + list(chunks.values())), User("nobody"))
