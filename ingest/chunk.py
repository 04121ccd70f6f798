"""Chunking: elements in, chunks that fit the embedding model out.

Structure first: a chunk never spans two sections (heading paths) or two pages, so every
citation points at one place. Inside a section, whole units are packed up to the token budget:
sentences of paragraphs (Chinese 。！？； end sentences too), whole list items, whole table rows
(each row already carries its headers). A unit longer than the budget is split at clause marks,
then words, then characters. Tokens are counted with the embedding model's own tokenizer, and
every chunk is re-counted at the end: none exceeds the model's maximum, so nothing is silently
truncated. Overlap repeats the last units of the previous chunk of the same section.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from zhiku.protocols import TokenCounter
from zhiku.records import Chunk, Element
from zhiku.text import joiner, split_sentences

_CLAUSE_END = re.compile(r"(?<=[,;:，、：])\s*")


@dataclass(frozen=True)
class ChunkPolicy:
    budget: int  # tokens per chunk, special tokens included
    overlap: int  # tokens of trailing units repeated at the start of the next chunk
    max_tokens: int  # the model's hard limit


@dataclass
class _Unit:
    text: str
    tokens: int
    kind: str
    page: int | None
    heading_path: tuple[str, ...]


def chunk_elements(elements: Sequence[Element], count: TokenCounter, policy: ChunkPolicy) -> list[Chunk]:
    """Pack elements into chunks under ``policy``; positions are 0..n-1 in document order."""
    special = count([""])[0]
    units = _units(elements, count, policy, special)
    chunks: list[Chunk] = []
    current: list[_Unit] = []

    def close() -> None:
        if current and not all(u.kind == "title" for u in current):
            chunks.append(_make_chunk(current, len(chunks)))

    for unit in units:
        same_place = current and (current[0].heading_path, current[0].page) == (unit.heading_path, unit.page)
        if current and (not same_place or _size(current + [unit], special) > policy.budget):
            close()
            current = _overlap(current, policy.overlap) if same_place else []
            while current and _size(current + [unit], special) > policy.budget:
                current.pop(0)
        current.append(unit)
    close()
    return _enforce_limit(chunks, count, policy)


def _size(units: Sequence[_Unit], special: int) -> int:
    return special + sum(u.tokens for u in units)


def _overlap(units: list[_Unit], overlap: int) -> list[_Unit]:
    """The trailing units (never a title alone) whose tokens fit in ``overlap``."""
    kept: list[_Unit] = []
    total = 0
    for unit in reversed(units):
        if total + unit.tokens > overlap:
            break
        kept.insert(0, unit)
        total += unit.tokens
    return [] if all(u.kind == "title" for u in kept) else kept


def _units(elements: Sequence[Element], count: TokenCounter, policy: ChunkPolicy, special: int) -> list[_Unit]:
    """Elements broken into packable units, each within the budget on its own."""
    pieces: list[tuple[str, Element]] = []
    for element in elements:
        if element.kind == "text":
            pieces.extend((s, element) for s in split_sentences(element.text))
        else:
            pieces.append((element.text.strip(), element))
    sizes = count([p for p, _ in pieces]) if pieces else []
    room = policy.budget - special
    units: list[_Unit] = []
    for (text, element), size in zip(pieces, sizes):
        heading_path = element.heading_path + ((element.text[:120],) if element.kind == "title" else ())
        # a title opens its own section: it is packed with the text under it
        for part, tokens in _fit(text, size - special, room, count, special):
            units.append(_Unit(part, tokens, element.kind, element.page, heading_path))
    return units


def _fit(text: str, tokens: int, room: int, count: TokenCounter, special: int) -> list[tuple[str, int]]:
    """``text`` as pieces of at most ``room`` tokens: split at clauses, then words, then characters."""
    if tokens <= room:
        return [(text, tokens)]
    for splitter in (_CLAUSE_END.split, str.split, _halves):
        parts = [p for p in splitter(text) if p and p.strip()]
        if len(parts) > 1:
            break
    merged: list[tuple[str, int]] = []
    sizes = [n - special for n in count(parts)]
    buffer, buffer_tokens = "", 0
    for part, size in zip(parts, sizes):
        if buffer and buffer_tokens + size <= room:
            buffer, buffer_tokens = buffer + joiner(buffer, part) + part, buffer_tokens + size
            continue
        if buffer:
            merged.extend(_fit(buffer, buffer_tokens, room, count, special))
        buffer, buffer_tokens = part, size
    if buffer:
        merged.extend(_fit(buffer, buffer_tokens, room, count, special))
    return merged


def _halves(text: str) -> list[str]:
    middle = len(text) // 2
    return [text[:middle], text[middle:]] if middle else [text]


#: A paragraph ending in one of these runs on into the next one on the same line.
_RUNS_ON = re.compile(r"[.!?;,。！？；，、]$")


def _make_chunk(units: Sequence[_Unit], position: int) -> Chunk:
    """Paragraphs of prose that end a sentence are joined on one line; any other paragraph ("Owner:
    Li Na", a list item without a full stop) keeps its own line, so a label's value never runs into
    the next paragraph's words."""
    text = units[0].text
    for previous, unit in zip(units, units[1:]):
        prose = previous.kind == unit.kind == "text" and _RUNS_ON.search(previous.text.rstrip())
        text += (joiner(text, unit.text) if prose else "\n") + unit.text
    kinds = {u.kind for u in units} - {"title"}
    return Chunk(
        text=text,
        position=position,
        n_tokens=0,  # measured by _enforce_limit
        page=units[0].page,
        heading_path=units[-1].heading_path,
        kind=kinds.pop() if len(kinds) == 1 else "text",
    )


def _enforce_limit(chunks: list[Chunk], count: TokenCounter, policy: ChunkPolicy) -> list[Chunk]:
    """Measure each chunk as the model will see it; split any that joining pushed over the limit."""
    if not chunks:
        return []
    special = count([""])[0]
    out: list[Chunk] = []
    for chunk, tokens in zip(chunks, count([c.text for c in chunks])):
        if tokens <= policy.max_tokens:
            chunk.n_tokens = tokens
            out.append(chunk)
            continue
        room = policy.max_tokens - special - 8  # margin for tokens that merge across a join
        pieces = [Chunk(text, 0, 0, chunk.page, chunk.heading_path, chunk.kind)
                  for text, _ in _fit(chunk.text, tokens - special, room, count, special)]
        out.extend(_enforce_limit(pieces, count, policy))
    for position, chunk in enumerate(out):
        chunk.position = position
    return out
