"""The vector index turns approximate by itself past ``ann_threshold`` chunks, stays close to exact,
is rebuilt from SQLite when stale, follows re-ingests, and keeps access filtering exact."""
from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from retrieval.vector import VectorRetriever
from zhiku import vector_index
from zhiku.kb import VECTORS_STAMP, KnowledgeBase
from zhiku.errors import SettingsError
from zhiku.records import PUBLIC, Chunk, Document, User
from zhiku.settings import Settings

DIM = 384
THRESHOLD = 1_000
PER_DOC = 50
N_DOCS = 60  # 3,000 chunks: three times the threshold
EVERYONE = User(sees_all=True)
#: Sees only the public documents: one in ten (most of the index is foreign to them).
STAFF = User("sam", ("staff",))
#: Sees exactly one document of 50 chunks among 3,000: the search must widen to every list.
AUDITOR = User("ada", ("audit",))


def groups_of(d: int) -> tuple[str, ...]:
    if d == 7:
        return ("audit",)
    return (PUBLIC,) if d % 10 == 0 else ("hr",)


def clustered(n: int, seed: int) -> np.ndarray:
    """Unit vectors around the same 40 centres: neighbourhoods like an embedding space's, not
    uniform noise; chunks and queries (other seeds) come from the same space."""
    centres = np.random.default_rng(0).standard_normal((40, DIM)).astype(np.float32)
    rng = np.random.default_rng(seed)
    vectors = centres[rng.integers(0, 40, n)] + 0.6 * rng.standard_normal((n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def put_doc(kb: KnowledgeBase, d: int, vectors: np.ndarray, version: str = "") -> None:
    chunks = [Chunk(text=f"doc {d} chunk {i}{version}", position=i, n_tokens=5) for i in range(len(vectors))]
    kb.put_document(Document(source=f"/docs/{d}.md", content_hash=f"{d}{version}", groups=groups_of(d)), chunks, vectors)


def stored(kb: KnowledgeBase) -> tuple[np.ndarray, np.ndarray, dict[int, tuple[str, ...]]]:
    """Every chunk id, its vector, and each chunk's document groups: the exact answer's inputs."""
    ids = np.array([c.id for c in kb.iter_chunks()], dtype=np.int64)
    groups = {d.id: d.groups for d in kb.documents()}
    owners = {c.id: groups[c.doc_id] for c in kb.iter_chunks()}
    return ids, kb.vectors_of(ids), owners


def exact(store: tuple, query: np.ndarray, k: int, user: User) -> list[int]:
    """The exact top ``k`` among what ``user`` may see, by brute force over ``stored(kb)``."""
    ids, vectors, owners = store
    visible = np.array([user.can_see(owners[int(i)]) for i in ids])
    ids, vectors = ids[visible], vectors[visible]
    return [int(i) for i in ids[np.argsort(-(vectors @ query), kind="stable")[:k]]]


def index_ids(index: faiss.Index) -> set[int]:
    if not vector_index.is_approximate(index):
        return {int(index.id_map.at(i)) for i in range(index.ntotal)}
    lists = index.invlists
    return {int(i) for n in range(index.nlist)
            for i in faiss.rev_swig_ptr(lists.get_ids(n), lists.list_size(n))}


@pytest.fixture(scope="module")
def big_kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 chunks in 60 documents, built once; tests open it themselves (with a threshold of 1,000)."""
    root = tmp_path_factory.mktemp("ann") / "kb"
    vectors = clustered(N_DOCS * PER_DOC, seed=1)
    with KnowledgeBase.open(root, "minilm", DIM, ann_threshold=THRESHOLD) as kb:
        for d in range(N_DOCS):
            put_doc(kb, d, vectors[d * PER_DOC:(d + 1) * PER_DOC])
        kb.save_vectors()
    return root


def queries(n: int = 30) -> np.ndarray:
    return clustered(n, seed=2)


def test_the_index_is_exact_below_the_threshold_and_approximate_from_it(tmp_path: Path) -> None:
    vectors = clustered(1_500, seed=3)
    with KnowledgeBase.open(tmp_path / "kb", "minilm", DIM, ann_threshold=THRESHOLD) as kb:
        for d in range(18):  # 900 chunks
            put_doc(kb, d, vectors[d * PER_DOC:(d + 1) * PER_DOC])
        assert vector_index.kind(kb.vector_index()) == "flat"
        for d in range(18, 30):  # 1,500 chunks: past the threshold, during one session
            put_doc(kb, d, vectors[d * PER_DOC:(d + 1) * PER_DOC])
        index = kb.vector_index()
        assert vector_index.is_approximate(index)
        assert index.nlist == vector_index.nlist_for(1_500) and 1 <= index.nprobe < index.nlist
        assert index.ntotal == 1_500 and index_ids(index) == {c.id for c in kb.iter_chunks()}


def test_approximate_results_match_flat_closely(big_kb: Path, embedder) -> None:
    with KnowledgeBase.open(big_kb, "minilm", ann_threshold=THRESHOLD) as kb:
        assert vector_index.is_approximate(kb.vector_index())
        retriever, store = VectorRetriever(kb, embedder), stored(kb)
        overlap = [len(set(retriever.search(q, 10, EVERYONE)[0].tolist()) & set(exact(store, q, 10, EVERYONE))) / 10
                   for q in queries()]
    assert np.mean(overlap) >= 0.95


def near_copies(n_topics: int, per_topic: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Topic centres and ``per_topic`` near-copies of each: every chunk's nearest neighbours are its
    own topic's copies, in its own list, as with a corpus of many versions of the same texts."""
    rng = np.random.default_rng(seed)
    topics = rng.standard_normal((n_topics, DIM)).astype(np.float32)
    vectors = np.repeat(topics, per_topic, axis=0) + 0.1 * rng.standard_normal((n_topics * per_topic, DIM)).astype(np.float32)
    return topics, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_calibration_probes_enough_lists_for_questions_far_from_every_chunk() -> None:
    """Calibrating on the stored vectors would pick one list of 225 here (each chunk's neighbours
    share it; even five times that many found 0.85 of the questions' top 10): questions that lean
    towards eight topics at once sit far from every chunk."""
    topics, vectors = near_copies(600, 15, seed=1)
    ids = np.arange(len(vectors), dtype=np.int64)
    rng = np.random.default_rng(2)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        chosen = np.sort(rng.choice(len(vectors), size=min(n, len(vectors)), replace=False))
        return ids[chosen], vectors[chosen]

    index = vector_index.build(DIM, len(vectors), lambda: [(ids, vectors)], sample, THRESHOLD)
    leanings = topics[rng.integers(0, len(topics), (50, 8))].sum(axis=1)
    questions = leanings + 4 * rng.standard_normal((50, DIM)).astype(np.float32)
    questions /= np.linalg.norm(questions, axis=1, keepdims=True)
    _, found = vector_index.search(index, questions, 10)
    _, truth = vector_index.search(index, questions, 10, widen=index.nlist)
    assert vector_index.is_approximate(index) and index.nlist == 225 and index.nprobe < index.nlist
    assert np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]) >= 0.95


def test_a_saved_approximate_index_is_loaded_and_a_stale_one_rebuilt_from_sqlite(big_kb: Path) -> None:
    with KnowledgeBase.open(big_kb, "minilm", ann_threshold=THRESHOLD) as kb:
        saved = kb.vector_index()  # read from vectors.faiss, calibrated when it was built
        assert vector_index.is_approximate(saved) and saved.nprobe >= 1
        epoch, ids = kb.epoch, {c.id for c in kb.iter_chunks()}
    (big_kb / VECTORS_STAMP).write_text(str(epoch - 1))  # as after a crash between commit and save
    with KnowledgeBase.open(big_kb, "minilm", ann_threshold=THRESHOLD) as kb:
        rebuilt = kb.vector_index()
        assert vector_index.is_approximate(rebuilt) and rebuilt.ntotal == len(ids) and index_ids(rebuilt) == ids
        kb.save_vectors()
    with KnowledgeBase.open(big_kb, "minilm", ann_threshold=10 * N_DOCS * PER_DOC) as kb:
        assert vector_index.kind(kb.vector_index()) == "flat"  # a higher threshold: exact again


def test_a_re_ingest_on_the_approximate_index_replaces_the_documents_vectors(tmp_path: Path, embedder) -> None:
    vectors = clustered(1_500, seed=4)
    with KnowledgeBase.open(tmp_path / "kb", "minilm", DIM, ann_threshold=THRESHOLD) as kb:
        for d in range(30):
            put_doc(kb, d, vectors[d * PER_DOC:(d + 1) * PER_DOC])
        held = kb.vector_index()
        replacement = clustered(20, seed=5)
        put_doc(kb, 3, replacement, version=" v2")  # 50 chunks out, 20 in
        current = kb.vector_index()
        assert held.ntotal == 1_500 and current.ntotal == 1_470 and vector_index.is_approximate(current)
        assert index_ids(current) == {c.id for c in kb.iter_chunks()}
        new_ids = [c.id for c in kb.chunks_of(next(d.id for d in kb.documents() if d.source == "/docs/3.md"))]
        found = VectorRetriever(kb, embedder).search(replacement[0], 1, EVERYONE)[0].tolist()
        assert found == [new_ids[0]]


@pytest.mark.parametrize("user", [STAFF, AUDITOR], ids=["sees one in ten", "sees one document"])
def test_approximate_search_keeps_access_filtering_exact(big_kb: Path, embedder, user: User) -> None:
    with KnowledgeBase.open(big_kb, "minilm", ann_threshold=THRESHOLD) as kb:
        assert vector_index.is_approximate(kb.vector_index())
        store = stored(kb)
        owners = store[2]
        retriever = VectorRetriever(kb, embedder)
        for q in queries(10):
            hits = retriever.retrieve_vector(q, 10, user)
            assert len(hits) == 10  # k visible hits, however few chunks the user may see
            assert all(user.can_see(h.document.groups) for h in hits)  # never a foreign one
            assert all(user.can_see(owners[h.chunk.id]) for h in hits)
            truth = exact(store, q, 10, user)
            assert len({h.chunk.id for h in hits} & set(truth)) >= 8



def test_ann_threshold_is_a_setting_that_refuses_nonsense(tmp_path: Path) -> None:
    assert Settings.load(env={"ZHIKU_ANN_THRESHOLD": "5000"}, cwd=tmp_path).ann_threshold == 5000
    with pytest.raises(SettingsError, match="ann_threshold"):
        Settings(ann_threshold=0)
