"""Training pairs without labels: offline queries that pass the round-trip filter, hard negatives
never from the positive's own document, feedback as real labels, the held-out split by document,
the file round trip, and ``zhiku tune pairs``."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from pair_corpus import SECRET, build_pair_kb

from cli_runner import run_zhiku
from tune.fusion import LOCAL_ADMIN
from tune.pairs import (
    FILTER_K, PairSet, TrainingPair, build_pairs, chunk_texts, load_pairs, pairs_path, positive_text,
    save_pairs,
)
from zhiku.errors import TuneError
from zhiku.kb import KnowledgeBase
from zhiku.records import Hit
from zhiku.settings import Settings


@pytest.fixture(scope="module")
def pair_kb(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:
    return build_pair_kb(tmp_path_factory.mktemp("pairs") / "kb", embedder)


@pytest.fixture(scope="module")
def pairs(pair_kb: Path, embedder) -> PairSet:
    with KnowledgeBase.open(pair_kb, embedder.name) as kb:
        return build_pairs(kb, Settings(kb=pair_kb), n=50, embedder=embedder)


def test_offline_pairs_ask_about_their_chunk_in_every_kind(pairs: PairSet, pair_kb: Path, embedder):
    every = pairs.train + pairs.holdout
    assert len(every) >= 8
    assert {"heading", "cloze", "fact"} <= {p.origin for p in every}
    assert len({p.query.lower() for p in every}) == len(every)  # no query twice
    with KnowledgeBase.open(pair_kb, embedder.name) as kb:
        texts = chunk_texts(kb, [p.positive for p in every])
        titles = {d.title for d in kb.documents()}
    for pair in every:
        if pair.origin == "cloze":  # the sentence is the query; the model sees the chunk without it
            assert pair.query in texts[pair.positive] and pair.query not in positive_text(pair, texts[pair.positive])
        if pair.origin == "heading":
            assert pair.query in titles


def test_every_generated_pair_passes_the_round_trip_filter(pairs: PairSet, pair_kb: Path, embedder):
    from retrieval.keyword import KeywordRetriever
    from retrieval.vector import VectorRetriever
    from tune.examples import PUBLIC_READER

    with KnowledgeBase.open(pair_kb, embedder.name) as kb:
        keyword, vector = KeywordRetriever(kb), VectorRetriever(kb, embedder)
        for pair in pairs.train + pairs.holdout:
            found: list[Hit] = keyword.retrieve(pair.query, FILTER_K, PUBLIC_READER) + \
                vector.retrieve(pair.query, FILTER_K, PUBLIC_READER)
            assert pair.positive in {h.chunk.id for h in found}


def test_negatives_come_from_other_documents_only(pairs: PairSet, pair_kb: Path, embedder):
    every = pairs.train + pairs.holdout
    assert sum(len(p.negatives) for p in every) >= len(every)  # mined, not empty
    with KnowledgeBase.open(pair_kb, embedder.name) as kb:
        chunks = kb.chunks_by_ids([i for p in every for i in (p.positive, *p.negatives)])
    for pair in every:
        assert pair.positive not in pair.negatives
        assert all(chunks[n].doc_id != chunks[pair.positive].doc_id for n in pair.negatives)


def test_the_holdout_is_other_documents_than_training(pairs: PairSet, pair_kb: Path, embedder):
    assert pairs.train and pairs.holdout
    with KnowledgeBase.open(pair_kb, embedder.name) as kb:
        doc_of = {i: c.doc_id for i, c in kb.chunks_by_ids([p.positive for p in pairs.train + pairs.holdout]).items()}
    assert not {doc_of[p.positive] for p in pairs.train} & {doc_of[p.positive] for p in pairs.holdout}


def test_pairs_built_for_everyone_hold_no_restricted_chunk_or_text(pairs: PairSet, pair_kb: Path, embedder):
    with KnowledgeBase.open(pair_kb, embedder.name) as kb:
        restricted = {c.id for d in kb.documents() if d.groups == ("board",) for c in kb.chunks_of(d.id)}
        every = pairs.train + pairs.holdout
        assert not {i for p in every for i in (p.positive, *p.negatives)} & restricted
        assert SECRET not in " ".join(p.query for p in every)
        # the owner may opt in: then the restricted document is asked about too
        everything = build_pairs(kb, Settings(kb=pair_kb), n=50, embedder=embedder, audience=LOCAL_ADMIN)
    assert {p.positive for p in everything.train + everything.holdout} & restricted


def test_feedback_ratings_become_real_pairs(tmp_path: Path, embedder):
    root = build_pair_kb(tmp_path / "kb", embedder)
    with KnowledgeBase.open(root, embedder.name) as kb:
        chunks = {c.text.split(".")[0]: c for c in kb.iter_chunks()}
        good, bad = chunks["Laptops are replaced every 4 years"], chunks["Passwords must be changed every 90 days"]
        with kb.transaction(content=False) as conn:
            for rating, chunk in ((1, good), (-1, bad)):
                conn.execute("INSERT INTO feedback (created_at, user, question, answer, rating, citations) "
                             "VALUES (?,?,?,?,?,?)", (time.time(), "pat", "When do I get a new laptop?", "...", rating,
                                                      json.dumps([{"n": 1, "chunk_id": chunk.id}])))
        made = build_pairs(kb, Settings(kb=root), n=2, embedder=embedder)
    rated = [p for p in made.train if p.origin == "feedback"]
    assert rated == [TrainingPair("When do I get a new laptop?", good.id, (bad.id,), "feedback")]
    assert all(p.origin != "feedback" for p in made.holdout)


def test_pairs_round_trip_through_the_knowledge_base_file(tmp_path: Path, pairs: PairSet):
    path = save_pairs(tmp_path, pairs)
    assert path == pairs_path(tmp_path) == tmp_path / "tune" / "pairs.jsonl"
    assert load_pairs(tmp_path) == pairs
    path.write_text('{"split": "train", "query": "q"}\n', encoding="utf-8")
    with pytest.raises(TuneError, match="line 1.*zhiku tune pairs"):
        load_pairs(tmp_path)
    with pytest.raises(TuneError, match="no training pairs yet"):
        load_pairs(tmp_path / "elsewhere")


def test_a_knowledge_base_with_nothing_public_makes_no_pairs(tmp_path: Path, embedder):
    from zhiku.records import Chunk, Document

    with KnowledgeBase.open(tmp_path / "kb", embedder.name, embedder.dimension) as kb:
        kb.put_document(Document(source="/x.md", content_hash="x", title="Secret plans of the board", groups=("board",)),
                        [Chunk(text="Secret. Plans.", position=0, n_tokens=3)], embedder.embed(["Secret. Plans."]))
        with pytest.raises(TuneError, match="no training pair.*--all-documents"):
            build_pairs(kb, Settings(kb=tmp_path / "kb"), n=5, embedder=embedder)


def test_zhiku_tune_pairs_writes_the_file_and_prints_counts_only(capsys, monkeypatch, tmp_path: Path, embedder):
    root = build_pair_kb(tmp_path / "kb", embedder)
    code, out, err = run_zhiku(capsys, monkeypatch, "tune", "pairs", "--kb", str(root), "--n", "20", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["saved_to"] == str(root / "tune" / "pairs.jsonl")
    assert payload["train"]["pairs"] + payload["holdout"]["pairs"] == len(load_pairs(root).train + load_pairs(root).holdout)
    assert "Marcus" not in out and "?" not in out  # figures, not the queries
    code, out, err = run_zhiku(capsys, monkeypatch, "tune", "pairs", "--kb", str(root), "--n", "0")
    assert code == 2 and "--n" in err

