"""Synthetic questions from a knowledge base, so a company can measure retrieval on its own corpus.

Chunks are sampled with a seeded generator (the same knowledge base and seed give the same file).
With an LLM configured, each sampled chunk is turned into one question and a short answer by a
prompt; without one, two template generators take turns:

- **triple**: a fact the graph extracted from the chunk becomes "What is the <relation> of
  <subject>?" (Chinese: "<subject>的<relation>是什么？") with the object as the answer;
- **cloze**: a salient sentence of the chunk (one holding a number or a name) with that key term
  masked becomes a fill-in-the-blank question whose answer is the masked term.

Each question's ``relevant`` is the source of the chunk's document and its ``evidence`` is the
sentence it came from, so the harness can judge both documents and chunks (without chunk ids, which
change when a document is re-ingested). Template questions are easier than real ones (they reuse
the corpus's own words): treat their figures as an upper bound, and compare modes, not absolutes.
"""
from __future__ import annotations

import json
import logging
import random
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from eval.text import normalize, sentences
from zhiku.kb import KnowledgeBase
from zhiku.records import Chunk, Triple, User
from zhiku.text import CJK_CHARS, has_cjk
from zhiku.prompts import WRITE_QUESTION

log = logging.getLogger(__name__)

_JSON = re.compile(r"\{.*?\}", re.DOTALL)
#: Key terms a cloze question masks, best kind first: amounts with a currency or unit, then names
#: (capitalised words not at the start of the sentence). Bare numbers (a day, a section) are not masked.
_EN_TERMS = (
    re.compile(r"(?:EUR|USD|CNY|RMB|€|\$)\s?\d[\d,.]*(?:\s?(?:million|billion|thousand|k))?"
               r"|\d[\d,.]*\s?(?:%|percent|million|billion|days?|weeks?|months?|years?|hours?|minutes?|euros?|"
               r"dollars?|EUR|USD|CNY|RMB|TB|GB|km|kg|mm|ms|m²|robots?|engineers?|employees?|sites?)\b"),
    re.compile(r"(?<=[a-z,] )[A-Z][\w&.-]*(?: [A-Z][\w&.-]*)*"),
)
_ZH_TERMS = (
    re.compile(r"(?:人民币)?(?:\d[\d,.]*|[零一二三四五六七八九十百千万两]+)\s*(?:%|万元|元|个|天|年|月|周|小时|分钟|人|名|次|台|项|件|套|托|米|kg)"),
)
#: Relations extracted from tables and nouns read as "the <relation> of <subject>"; verb phrases do not.
_NOUN_RELATION = re.compile(f"^[A-Z{CJK_CHARS}]")
BLANK = "____"
#: Relations that make no question (aliases restate the subject).
_SKIPPED_RELATIONS = {"also known as"}


@dataclass
class GeneratedQuestion:
    id: str
    query: str
    relevant: list[str]
    answer: str
    evidence: list[str] = field(default_factory=list)
    type: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _sample(kb: KnowledgeBase, seed: int, user: User | None) -> list[Chunk]:
    """The chunks (of documents ``user`` may see, when given) in a seeded order."""
    allowed = None if user is None else {d.id for d in kb.documents(user)}
    chunks = sorted((c for c in kb.iter_chunks() if c.kind != "title" and (allowed is None or c.doc_id in allowed)),
                    key=lambda c: c.id or 0)
    random.Random(seed).shuffle(chunks)
    return chunks


def _sentence_with(text: str, *needles: str) -> str:
    for sentence in sentences(text):
        if all(normalize(n).replace(" ", "") in normalize(sentence).replace(" ", "") for n in needles):
            return sentence
    return ""


def triple_question(triple: Triple, chunk: Chunk) -> tuple[str, str, str] | None:
    """(question, answer, evidence) from one fact, or None when the fact makes a poor question."""
    subject, relation, obj = triple.subject.strip(), triple.relation.strip(), triple.object.strip()
    if len(subject) < 2 or subject.isdigit() or not (relation and obj) or relation in _SKIPPED_RELATIONS \
            or len(obj) > 60 or normalize(obj) in normalize(subject):
        return None
    evidence = _sentence_with(chunk.text, subject, obj)
    if not evidence:
        return None
    if has_cjk(subject + relation):
        return f"{subject}的{relation}是什么？", obj, evidence
    if _NOUN_RELATION.match(relation):
        return f"What is the {relation} of {subject}?", obj, evidence
    return f'Fill in the blank: "{subject} {relation} {BLANK}"', obj, evidence


def cloze_question(sentence: str) -> tuple[str, str] | None:
    """(question, answer): ``sentence`` with its first key term blanked, or None without one."""
    chinese = has_cjk(sentence)
    words = len(sentence) if chinese else len(sentence.split())
    if not (12 if chinese else 6) <= words <= (80 if chinese else 40) or not sentence[0].isalnum():
        return None
    match = next((m for m in (p.search(sentence) for p in (_ZH_TERMS if chinese else _EN_TERMS)) if m), None)
    term = match.group().strip().rstrip(".,;:") if match else ""
    if len(term) < 2:
        return None
    masked = sentence[: match.start()] + BLANK + sentence[match.start() + len(term):]
    return (f"填空：「{masked}」" if chinese else f'Fill in the blank: "{masked}"'), term


def _template_questions(kb: KnowledgeBase, chunks: list[Chunk]) -> Iterator[tuple[Chunk, str, str, str, str]]:
    """(chunk, kind, question, answer, evidence), alternating triple and cloze questions."""
    by_chunk: dict[int, list[Triple]] = defaultdict(list)
    for triple in kb.triples():
        if triple.chunk_id is not None:
            by_chunk[triple.chunk_id].append(triple)
    turn = 0
    for chunk in chunks:
        made = []
        for triple in by_chunk.get(chunk.id or -1, []):
            q = triple_question(triple, chunk)
            if q:
                made.append((chunk, "triple", *q))
                break
        for sentence in sentences(chunk.text):
            q = cloze_question(sentence)
            if q:
                made.append((chunk, "cloze", q[0], q[1], sentence))
                break
        if made:
            turn += 1
            yield made[turn % len(made)]


def _llm_questions(llm: Any, chunks: list[Chunk]) -> Iterator[tuple[Chunk, str, str, str, str]]:
    for chunk in chunks:
        try:
            reply = llm.complete(WRITE_QUESTION.format(passage=chunk.text[:2000])).text
            match = _JSON.search(reply)
            data = json.loads(match.group()) if match else {}
        except Exception as exc:  # one bad generation skips that chunk, never the run
            log.warning("question generation failed for chunk %s: %s", chunk.id, exc)
            continue
        question, answer = str(data.get("question", "")).strip(), str(data.get("answer", "")).strip()
        if question and answer:
            yield chunk, "llm", question, answer, _sentence_with(chunk.text, answer) or answer


def chunk_questions(
    kb: KnowledgeBase, seed: int = 0, llm: Any = None, user: User | None = None,
) -> Iterator[tuple[Chunk, GeneratedQuestion]]:
    """Questions with the chunk each was made from, at most one per chunk, without repeats.

    ``user`` limits the sampled chunks to documents that user may see (``zhiku tune llm`` builds
    its training data from public documents only); None samples every chunk.
    """
    chunks = _sample(kb, seed, user)
    sources = {d.id: d.source for d in kb.documents()}
    made = _llm_questions(llm, chunks) if llm is not None else _template_questions(kb, chunks)
    seen: set[str] = set()
    for chunk, kind, question, answer, evidence in made:
        if normalize(question) in seen:
            continue
        seen.add(normalize(question))
        yield chunk, GeneratedQuestion(f"gen-{len(seen)}", question, [sources[chunk.doc_id]], answer,
                                       [evidence] if evidence else [], kind)


def generate(kb: KnowledgeBase, n: int = 50, seed: int = 0, llm: Any = None, user: User | None = None,
             progress: bool = True) -> list[GeneratedQuestion]:
    """Up to ``n`` questions, at most one per chunk, from chunks sampled with ``seed`` (of the
    documents ``user`` may see, when given)."""
    out: list[GeneratedQuestion] = []
    with tqdm(total=n, desc="generate", unit="q", disable=not progress, leave=False) as bar:
        for _, question in chunk_questions(kb, seed, llm, user):
            if len(out) >= n:
                break
            out.append(question)
            bar.update()
    return out


def write_jsonl(questions: list[GeneratedQuestion], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(q.to_json(), ensure_ascii=False) + "\n" for q in questions), encoding="utf-8")
