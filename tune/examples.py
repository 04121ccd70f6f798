"""Training examples for the local LLM, built from a knowledge base's own documents.

An example is what the product sends the model and the reply we want back: the grounded prompt
(``retrieval.prompt.build_prompt``, the very builder answering uses) numbering a few passages, and
either a cited answer ("… [2]") or the exact not-found phrase (``zhiku.prompts.NOT_FOUND``).

- Questions come from ``eval.generate`` (the code of ``zhiku eval generate``), each with the chunk
  it was made from (the gold passage) and its short answer.
- The other passages are what BM25 retrieves for the question, less every chunk that holds the
  answer: near misses, as retrieval would put beside the gold passage.
- **Answerable**: the gold passage among the near misses, at a seeded position (so the model
  learns to read the passages, not to cite ``[1]``); the reply is the extractive answerer's cited
  answer when it cites the gold passage alone and holds the answer, else the gold sentence cited.
- **Unanswerable**: the same question over the near misses alone; the reply is the not-found phrase.

Access: questions and passages come only from documents every user may see (``PUBLIC_READER``).
A tuned model is served to every user of the knowledge base and its weights remember what it was
trained on, so restricted text must never be in its training data.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from eval.generate import GeneratedQuestion, chunk_questions
from eval.text import contains
from retrieval.catalog import Catalog
from retrieval.citations import CITATION, not_found_text
from retrieval.extractive import extractive_answer
from retrieval.keyword import KeywordRetriever
from retrieval.prompt import Prompt, build_prompt
from zhiku.kb import KnowledgeBase
from zhiku.records import Chunk, Hit, User

#: Whom training data is read as: a user in no group, who sees public documents only.
PUBLIC_READER = User(name="zhiku-tune")
#: Near misses fetched per question before those holding the answer are dropped.
CANDIDATES = 12


@dataclass
class Example:
    """One prompt and the reply the model should give to it.

    ``cite`` is the number of the gold passage in the prompt (None when unanswerable); an
    answerable and an unanswerable example of the same question share ``question_id``, so a
    held-out split keeps both on the same side.
    """

    question_id: str
    question: str
    prompt: Prompt
    reply: str
    answerable: bool
    gold: str
    cite: int | None = None


def build_examples(
    kb: KnowledgeBase,
    questions: int,
    count_tokens: Callable[[str], int],
    passages: int = 3,
    budget: int = 1024,
    seed: int = 0,
) -> list[Example]:
    """Up to ``questions`` answerable examples and as many unanswerable ones, in a seeded order.

    ``count_tokens`` and ``budget`` are the model's tokenizer and the prompt's token budget, as
    answering would use them; a question whose gold passage does not fit is skipped.
    """
    catalog = Catalog(kb)
    keyword = KeywordRetriever(kb, catalog)
    documents = {d.id: d for d in kb.documents(PUBLIC_READER)}
    rng = random.Random(seed)
    out: list[Example] = []
    made = 0
    for chunk, question in chunk_questions(kb, seed, user=PUBLIC_READER):
        if made >= questions:
            break
        gold = Hit(chunk, documents[chunk.doc_id], 1.0)
        near = _near_misses(keyword, question, chunk)
        pair = list(_pair(question, gold, near, passages, budget, count_tokens, rng))
        if pair:
            out.extend(pair)
            made += 1
    return out


def _near_misses(keyword: KeywordRetriever, question: GeneratedQuestion, gold: Chunk) -> list[Hit]:
    """What BM25 finds for the question among public documents, less every chunk holding the answer."""
    found = keyword.retrieve(question.query, CANDIDATES, PUBLIC_READER)
    return [h for h in found if h.chunk.id != gold.id and not contains(h.chunk.text, question.answer)
            and not any(contains(h.chunk.text, e) for e in question.evidence)]


def _pair(
    question: GeneratedQuestion, gold: Hit, near: Sequence[Hit], passages: int, budget: int,
    count_tokens: Callable[[str], int], rng: random.Random,
) -> Iterator[Example]:
    """The answerable example (when the gold passage fits the budget), then the unanswerable one."""
    others = list(near[: passages - 1])
    hits = list(others)
    hits.insert(rng.randrange(len(others) + 1), gold)
    prompt = build_prompt(question.query, hits, budget, count_tokens)
    numbers = [n for n, h in enumerate(prompt.hits, 1) if h.chunk.id == gold.chunk.id]
    if not numbers:
        return
    n = numbers[0]
    yield Example(question.id, question.query, prompt, cited_reply(question, prompt.hits, n), True, question.answer, n)
    if near:
        without = build_prompt(question.query, list(near[:passages]), budget, count_tokens)
        yield Example(question.id, question.query, without, not_found_text(without.language), False, question.answer)


def cited_reply(question: GeneratedQuestion, hits: Sequence[Hit], n: int) -> str:
    """The answer to teach for gold passage ``n``: the extractive answer when it cites ``[n]`` alone
    and holds the gold answer, else the question's evidence sentence with ``[n]``."""
    extracted = extractive_answer(question.query, hits)
    if [c.n for c in extracted.citations] == [n] and contains(CITATION.sub("", extracted.text), question.answer):
        return extracted.text
    evidence = (question.evidence or [hits[n - 1].chunk.text])[0].strip()
    return f"{evidence} [{n}]"


def split_held_out(examples: Sequence[Example], share: float, seed: int = 0) -> tuple[list[Example], list[Example]]:
    """(training, held-out): a seeded ``share`` of the questions, both examples of each, held out.

    At least one question is held out and one kept for training when there are two or more.
    """
    ids = sorted({e.question_id for e in examples})
    random.Random(seed).shuffle(ids)
    count = min(max(1, round(share * len(ids))), max(1, len(ids) - 1))
    held = set(ids[:count])
    return [e for e in examples if e.question_id not in held], [e for e in examples if e.question_id in held]
