"""Hand-made hits shared by the prompt, citation and extractive-answer tests."""
from __future__ import annotations

from zhiku.records import Chunk, Document, Hit, Triple


def hit(text: str, chunk_id: int, page: int | None = 3, section: tuple[str, ...] = ("Leave", "Annual"),
        facts: tuple[Triple, ...] = ()) -> Hit:
    doc = Document(source="/docs/handbook.pdf", content_hash="h", title="handbook.pdf", id=1)
    chunk = Chunk(text=text, position=chunk_id, n_tokens=len(text.split()), page=page, heading_path=section,
                  doc_id=1, id=chunk_id)
    return Hit(chunk, doc, score=1.0, facts=list(facts))


HITS = [
    hit("Employees receive 25 days of paid vacation per year.", 11,
        facts=(Triple("Employees", "receive", "25 days of paid vacation", chunk_id=11),)),
    hit("The Berlin office opens at 8am. Visitors register at the reception desk.", 12, page=None, section=()),
    hit("Acme Robotics was founded by Jane Smith in 2009.", 13,
        facts=(Triple("Acme Robotics", "founded by", "Jane Smith", chunk_id=13),)),
]
