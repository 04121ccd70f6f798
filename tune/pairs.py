"""Training pairs for retrieval models, made from a knowledge base's own chunks (``zhiku tune pairs``).

A pair is a query, the chunk that answers it and a few hard negatives (chunks that look relevant
but come from other documents). The embedder (``tune.embedder``) and the cross-encoder learn from
the same pairs; no human labels are needed.

Queries, for a seeded sample of chunks (one pair per chunk at most):

- ``llm``: a question the configured LLM writes for the chunk (``eval.generate``'s prompt), when
  ``llm`` is ``local`` or ``openai`` (asked for, not implied by ``auto``);
- offline, taking turns so every kind is represented:
  - ``heading``: the section heading or the document title, for the first chunk under it, when it
    reads as a query (three words or more, not a file name); ``positive_text`` removes it from the
    chunk when the chunk repeats it;
  - ``fact``: a question from a fact the graph extracted from the chunk (``eval.generate``);
  - ``cloze``: inverse cloze, a seeded sentence of the chunk as the query; ``positive_text`` removes
    that sentence from the chunk, so a model learns to find the context, not to match a copy;
- ``feedback``: chat questions rated helpful, with the chunks their answer cited as positives and
  the chunks of answers rated unhelpful for the same question as negatives (real labels: they skip
  the filter and always train).

**Consistency filter**: a generated pair is kept only when BM25 or the current embedder retrieves
its chunk within the top ``FILTER_K`` for the query (round-trip consistency, as in Promptagator):
a query that neither finds its own chunk is most often a bad query.

**Hard negatives**: BM25's and the embedder's results for the query, interleaved by rank, less
every chunk of the positive's own document (its other passages may answer too), chunks with the
positive's text, and likely false negatives (a cosine to the query above ``FALSE_NEGATIVE`` times
the positive's own).

**Access groups**: pairs are built for one knowledge base, stored inside it (``<kb>/tune/``, private
to its owner) and train models that live inside it; nothing leaves the folder. A tuned model
serves every user of the knowledge base, so by default pairs are drawn from the documents *every*
user may see (``PUBLIC_READER``, as ``tune.examples`` does): no restricted text goes into shared
weights. ``audience=tune.fusion.LOCAL_ADMIN`` (``--all-documents``) draws from every document, for knowledge
bases whose owner accepts that a scorer's weights are shaped by restricted text (they never
return it: every retriever still filters by the asking user's groups). Negatives and feedback
pairs come only from documents the audience sees. The held-out pairs are split by document, so
no document is on both sides, and they are this knowledge base's own.
"""
from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from eval.generate import chunk_questions, triple_question
from eval.text import normalize, sentences
from retrieval.catalog import Catalog
from retrieval.keyword import KeywordRetriever
from retrieval.vector import VectorRetriever
from tune.examples import PUBLIC_READER
from zhiku.errors import TuneError
from zhiku.kb import KnowledgeBase, atomic_write
from zhiku.models import Embedder, load_embedder
from zhiku.records import Chunk, Document, Triple, User
from zhiku.settings import Settings
from zhiku.text import has_cjk

#: Where the pairs of a knowledge base are saved, inside it.
PAIRS_FILE = Path("tune") / "pairs.jsonl"
ORIGINS = ("llm", "heading", "cloze", "fact", "feedback")
#: A generated pair is kept when its chunk is in BM25's or the embedder's top FILTER_K for its query.
FILTER_K = 20
#: Results per retriever that hard negatives are picked from.
MINE_K = 30
#: Hard negatives kept per pair.
NEGATIVES = 3
#: A candidate negative whose cosine to the query is above this share of the positive's is
#: probably relevant too (positive-aware mining): it is not used as a negative.
FALSE_NEGATIVE = 0.95
#: Share of the documents whose pairs are held out.
HOLDOUT_SHARE = 0.2
#: Chunks whose queries are embedded and filtered together.
BATCH = 64


@dataclass(frozen=True)
class TrainingPair:
    """A query, the chunk id that answers it and hard-negative chunk ids (never of the positive's
    document), and where the query came from (one of ``ORIGINS``)."""

    query: str
    positive: int
    negatives: tuple[int, ...]
    origin: str


@dataclass(frozen=True)
class PairSet:
    """Pairs to train on, and pairs held out (other documents) to decide whether a model is kept."""

    train: list[TrainingPair]
    holdout: list[TrainingPair]

    def counts(self) -> dict[str, Any]:
        """How many pairs of each origin on each side (what the CLI prints: no query text)."""
        return {side: {"pairs": len(pairs), **{o: n for o in ORIGINS if (n := sum(p.origin == o for p in pairs))}}
                for side, pairs in (("train", self.train), ("holdout", self.holdout))}


@dataclass(frozen=True)
class _Candidate:
    chunk: Chunk
    query: str
    origin: str


# ------------------------------------------------------------------------------------ queries
def _is_query_like(text: str, document: Document) -> bool:
    """A heading worth asking: three words (six CJK characters) or more, not the file's name."""
    text = text.strip()
    if not text or Path(document.source).stem.lower() == text.lower() or Path(document.source).name == text:
        return False
    return len(text) >= 6 if has_cjk(text) else len(text.split()) >= 3


def _heading(chunk: Chunk, document: Document, first_of_section: bool) -> str:
    if not first_of_section:
        return ""
    for text in (chunk.heading_path[-1] if chunk.heading_path else "", document.title):
        if _is_query_like(text, document) and normalize(text) != normalize(chunk.text):
            return text.strip()
    return ""


def _cloze(chunk: Chunk, rng: random.Random) -> str:
    """A sentence of the chunk that leaves context behind when removed (the chunk has others)."""
    found = sentences(chunk.text)
    eligible = [s for s in found if (len(s) >= 12 if has_cjk(s) else 6 <= len(s.split()) <= 40)]
    if len(found) < 2 or not eligible:
        return ""
    return rng.choice(eligible).strip()


def _fact(chunk: Chunk, facts: Sequence[Triple]) -> str:
    for triple in facts:
        made = triple_question(triple, chunk)
        if made:
            return made[0]
    return ""


def offline_candidates(
    kb: KnowledgeBase, audience: User, seed: int,
) -> Iterator[list[_Candidate]]:
    """Per sampled chunk (seeded order, public documents for ``PUBLIC_READER``), its offline
    queries in a rotating order of preference, so every kind gets its turn."""
    documents = {d.id: d for d in kb.documents(audience)}
    chunks = sorted((c for c in kb.iter_chunks() if c.kind != "title" and c.doc_id in documents),
                    key=lambda c: (c.doc_id, c.position))
    first = {}
    for c in chunks:
        first.setdefault((c.doc_id, c.heading_path), c.id)
    facts: dict[int, list[Triple]] = defaultdict(list)
    for triple in kb.triples():
        if triple.chunk_id is not None:
            facts[triple.chunk_id].append(triple)
    rng = random.Random(seed)
    rng.shuffle(chunks)
    kinds = ("heading", "fact", "cloze")
    for turn, chunk in enumerate(chunks):
        made = {
            "heading": _heading(chunk, documents[chunk.doc_id], first[(chunk.doc_id, chunk.heading_path)] == chunk.id),
            "fact": _fact(chunk, facts.get(chunk.id or -1, ())),
            "cloze": _cloze(chunk, rng),
        }
        order = kinds[turn % 3:] + kinds[:turn % 3]
        found = [_Candidate(chunk, made[k], k) for k in order if made[k]]
        if found:
            yield found


def llm_candidates(kb: KnowledgeBase, audience: User, seed: int, llm: Any) -> Iterator[list[_Candidate]]:
    """One LLM-written question per sampled chunk (``eval.generate`` with its prompt)."""
    for chunk, question in chunk_questions(kb, seed, llm=llm, user=audience):
        yield [_Candidate(chunk, question.query, "llm")]


# ------------------------------------------------------------------------------------ filter and mine
class _Miner:
    """BM25 and the current embedder over the audience's chunks: the consistency filter and the
    hard-negative source, one batch of queries at a time."""

    def __init__(self, kb: KnowledgeBase, embedder: Embedder, audience: User) -> None:
        catalog = Catalog(kb)
        self.kb, self.embedder, self.audience = kb, embedder, audience
        self.keyword = KeywordRetriever(kb, catalog)
        self.vector = VectorRetriever(kb, embedder, catalog)

    def pairs(self, candidates: Sequence[_Candidate], filtered: bool = True) -> list[TrainingPair | None]:
        """Per candidate, its pair with negatives, or None when it fails the filter."""
        vectors = self.embedder.embed([c.query for c in candidates])
        positives = self.kb.vectors_of([c.chunk.id for c in candidates])
        out: list[TrainingPair | None] = []
        for candidate, query_vector, positive_vector in zip(candidates, vectors, positives):
            keyword = self.keyword.retrieve(candidate.query, MINE_K, self.audience)
            dense = self.vector.retrieve_vector(query_vector, MINE_K, self.audience)
            found = {h.chunk.id for h in keyword[:FILTER_K]} | {h.chunk.id for h in dense[:FILTER_K]}
            if filtered and candidate.chunk.id not in found:
                out.append(None)
                continue
            ceiling = FALSE_NEGATIVE * float(query_vector @ positive_vector)
            dense_scores = {h.chunk.id: h.score for h in dense}
            negatives: list[int] = []
            text = normalize(candidate.chunk.text)
            for hit in _interleave(dense, keyword):
                cid = hit.chunk.id
                if (hit.chunk.doc_id == candidate.chunk.doc_id or cid in negatives or hit.chunk.kind == "title"
                        or normalize(hit.chunk.text) == text or dense_scores.get(cid, -1.0) > ceiling):
                    continue
                negatives.append(cid)
                if len(negatives) == NEGATIVES:
                    break
            out.append(TrainingPair(candidate.query, int(candidate.chunk.id), tuple(negatives), candidate.origin))
        return out


def _interleave(*rankings: Sequence[Any]) -> Iterator[Any]:
    for rank in range(max(map(len, rankings), default=0)):
        for ranking in rankings:
            if rank < len(ranking):
                yield ranking[rank]


def _batches(items: Iterable[list[_Candidate]], size: int) -> Iterator[list[list[_Candidate]]]:
    batch: list[list[_Candidate]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# ------------------------------------------------------------------------------------ feedback
def feedback_pairs(kb: KnowledgeBase, audience: User) -> list[TrainingPair]:
    """Questions rated helpful, one pair per chunk their answer cited; chunks cited by unhelpful
    answers to the same question are its negatives. Only chunks the audience sees are used."""
    positives: dict[str, dict[int, None]] = defaultdict(dict)
    negatives: dict[str, dict[int, None]] = defaultdict(dict)
    asked: dict[str, str] = {}
    for question, rating, citations in kb.query("SELECT question, rating, citations FROM feedback ORDER BY id"):
        key = normalize(question)
        asked.setdefault(key, question.strip())
        try:
            cited = [int(c["chunk_id"]) for c in json.loads(citations or "[]") if c.get("chunk_id") is not None]
        except (ValueError, TypeError, KeyError, AttributeError):
            continue  # a damaged row is not a label
        for cid in cited:
            (positives if rating > 0 else negatives)[key][cid] = None
    ids = {cid for table in (positives, negatives) for row in table.values() for cid in row}
    chunks = kb.chunks_by_ids(sorted(ids))
    visible = {d.id for d in kb.documents(audience)}
    seen = {cid for cid, c in chunks.items() if c.doc_id in visible}
    out = []
    for key, cited in positives.items():
        for cid in cited:
            if cid not in seen:
                continue
            negs = tuple(n for n in negatives.get(key, {}) if n in seen and n not in cited
                         and chunks[n].doc_id != chunks[cid].doc_id)
            out.append(TrainingPair(asked[key], cid, negs[:NEGATIVES], "feedback"))
    return out


# ------------------------------------------------------------------------------------ the set
def split_by_document(pairs: Sequence[TrainingPair], doc_of: dict[int, int], share: float, seed: int,
                      ) -> tuple[list[TrainingPair], list[TrainingPair]]:
    """(train, holdout): the pairs of a seeded ``share`` of the documents held out, at least one
    document on each side when there are two or more."""
    docs = sorted({doc_of[p.positive] for p in pairs})
    random.Random(seed).shuffle(docs)
    count = min(max(1, round(share * len(docs))), len(docs) - 1) if len(docs) > 1 else 0
    held = set(docs[:count])
    return [p for p in pairs if doc_of[p.positive] not in held], [p for p in pairs if doc_of[p.positive] in held]


def build_pairs(
    kb: KnowledgeBase, settings: Settings, *, n: int, seed: int = 0, progress: bool | None = None,
    embedder: Embedder | None = None, llm: Any = None, audience: User = PUBLIC_READER,
    holdout_share: float = HOLDOUT_SHARE,
) -> PairSet:
    """Up to ``n`` generated pairs that pass the consistency filter, plus the feedback pairs.

    ``embedder`` is the knowledge base's current model (loaded from the settings when None);
    ``llm`` writes the questions (loaded when None and ``settings.llm`` is ``local`` or
    ``openai``; else the offline kinds). Feedback pairs always go to training; generated ones are
    split by document (``holdout_share`` of the documents held out).
    """
    if n < 1:
        raise ValueError("n must be 1 or more")
    embedder = embedder or load_embedder(settings.embedding_model or kb.manifest.embedding_model,
                                         settings.embed_batch_size)
    if llm is None and settings.llm in ("local", "openai"):
        from retrieval.llm import load_llm

        llm = load_llm(settings)
    source = llm_candidates(kb, audience, seed, llm) if llm is not None else offline_candidates(kb, audience, seed)
    miner = _Miner(kb, embedder, audience)
    made: list[TrainingPair] = []
    asked: set[str] = set()
    tried = 0
    with kb.snapshot(), tqdm(total=n, desc="pairs", unit="pair", disable=not progress, leave=False) as bar:
        for batch in _batches(source, BATCH):
            flat = [c for options in batch for c in options]
            results = dict(zip(map(id, flat), miner.pairs(flat)))
            for options in batch:
                tried += 1
                pair = next((results[id(c)] for c in options
                             if results[id(c)] is not None and normalize(c.query) not in asked), None)
                if pair is not None and len(made) < n:
                    asked.add(normalize(pair.query))
                    made.append(pair)
                    bar.update()
            bar.set_postfix_str(f"kept {len(made)}/{tried} chunks")
            if len(made) >= n:
                break
        feedback = feedback_pairs(kb, audience)
    if not made and not feedback:
        raise TuneError(f"{kb.root}: no training pair could be made ({tried} chunks tried; the documents "
                        f"{'every user may see ' if audience == PUBLIC_READER else ''}have no headings, facts "
                        "or sentences to ask about, or none passed the consistency filter); ingest more documents"
                        + (", or use --all-documents" if audience == PUBLIC_READER else ""))
    doc_of = {cid: c.doc_id for cid, c in kb.chunks_by_ids([p.positive for p in made]).items()}
    train, holdout = split_by_document(made, doc_of, holdout_share, seed)
    return PairSet(train + feedback, holdout)


# ------------------------------------------------------------------------------------ texts, files
def chunk_texts(kb: KnowledgeBase, ids: Iterable[int]) -> dict[int, str]:
    """The text each chunk is embedded from, by id (chunks removed since are absent)."""
    return {cid: c.text for cid, c in kb.chunks_by_ids(sorted(set(ids))).items()}


def positive_text(pair: TrainingPair, text: str) -> str:
    """The positive as a model should see it: for an inverse-cloze or heading pair, without the
    query's own words (a chunk often starts with its title), so it learns to find the context
    rather than to match a copy."""
    if pair.origin not in ("cloze", "heading"):
        return text
    rest = text.replace(pair.query, " ").strip()
    return " ".join(rest.split()) or text


def pairs_path(kb_dir: Path) -> Path:
    return Path(kb_dir) / PAIRS_FILE


def save_pairs(kb_dir: Path, pairs: PairSet) -> Path:
    """Write ``<kb>/tune/pairs.jsonl`` atomically (private to the owner, like the rest of the folder)."""
    from zhiku.kb import private_folder

    path = pairs_path(kb_dir)
    private_folder(path.parent)
    lines = [json.dumps({"split": split, **asdict(p)}, ensure_ascii=False) + "\n"
             for split, side in (("train", pairs.train), ("holdout", pairs.holdout)) for p in side]
    atomic_write(path, lambda tmp: tmp.write_text("".join(lines), encoding="utf-8"))
    return path


def load_pairs(kb_dir: Path) -> PairSet:
    """The pairs ``save_pairs`` wrote; a missing or damaged file is an error naming the fix."""
    path = pairs_path(kb_dir)
    if not path.exists():
        raise TuneError(f"{path}: no training pairs yet; make them with `zhiku tune pairs --kb {kb_dir}`")
    sides: dict[str, list[TrainingPair]] = {"train": [], "holdout": []}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            pair = TrainingPair(str(row["query"]), int(row["positive"]), tuple(int(x) for x in row["negatives"]),
                                str(row["origin"]))
            sides[row["split"]].append(pair)
        except (ValueError, TypeError, KeyError) as exc:
            raise TuneError(f"{path}, line {number}: not a training pair ({exc}); "
                            f"rebuild the file with `zhiku tune pairs --kb {kb_dir}`") from None
    return PairSet(sides["train"], sides["holdout"])
