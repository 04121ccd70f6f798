"""What leaves the ``Assistant`` with personal data masked: hits, answers (streamed and final), summaries.

The ``Assistant`` passes every result through ``Shown`` when ``pii`` is on; nothing else masks, so a
caller (CLI, UI, service) cannot forget to. Results are copied, never changed in place: retrievers
keep their chunks, and the knowledge base's rows stay as they are (in ``mask-answers`` they hold
the original text, which the local LLM reads unmasked). Text sent to an ``openai`` backend is
masked at the LLM itself (``retrieval.llm.MaskingOpenAI``).
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence

from retrieval.summary import Summary
from zhiku.pii import PiiMasker
from zhiku.records import Answer, Chunk, Citation, Document, Hit, Triple

#: Where a streamed answer may be cut and masked: after a sentence's end (PII never spans one; an
#: e-mail's or a number's full stop is not followed by white space).
_BOUNDARY = re.compile(r"(?:[。！？；\n]|[.!?](?=\s))\s*")
#: A streamed piece without a sentence end is released at white space once this long.
_MAX_PENDING = 400


class Shown:
    """Masked copies of the records the ``Assistant`` returns."""

    def __init__(self, masker: PiiMasker) -> None:
        self.masker = masker

    def hits(self, hits: Sequence[Hit]) -> list[Hit]:
        texts = self.masker.mask_many([h.chunk.text for h in hits])
        return [self._hit(h, text) for h, text in zip(hits, texts)]

    def answer(self, answer: Answer) -> Answer:
        by_id = {id(h): m for h, m in zip(answer.hits, self.hits(answer.hits))}
        cited = [c.hit for c in answer.citations if id(c.hit) not in by_id]
        by_id.update({id(h): m for h, m in zip(cited, self.hits(cited))})
        text, question = self.masker.mask_many([answer.text, answer.question])
        return dataclasses.replace(
            answer, text=text, question=question, hits=[by_id[id(h)] for h in answer.hits],
            citations=[Citation(c.n, by_id[id(c.hit)]) for c in answer.citations], facts=self.facts(answer.facts),
        )

    def stream(self, stream: Iterator[str | Answer]) -> Iterator[str | Answer]:
        """The answer's text pieces masked a sentence at a time (a name or number may arrive in
        several tokens), then the masked ``Answer``."""
        pending = ""
        for item in stream:
            if isinstance(item, Answer):
                if pending:
                    yield self.masker.mask(pending)
                yield self.answer(item)
                return
            pending += item
            cut = _cut_point(pending)
            if cut:
                yield self.masker.mask(pending[:cut])
                pending = pending[cut:]

    def summary(self, summary: Summary) -> Summary:
        texts = self.masker.mask_many([summary.text, *summary.key_points, *summary.entities])
        n = len(summary.key_points)
        return dataclasses.replace(summary, text=texts[0], key_points=texts[1:1 + n], entities=texts[1 + n:])

    def document(self, doc: Document) -> Document:
        return dataclasses.replace(doc, title=self.masker.mask(doc.title), metadata=self.masker.mask_metadata(doc.metadata))

    def chunks(self, chunks: Sequence[Chunk]) -> list[Chunk]:
        texts = self.masker.mask_many([c.text for c in chunks])
        return [self._chunk(c, text) for c, text in zip(chunks, texts)]

    def facts(self, facts: Sequence[Triple]) -> list[Triple]:
        if not facts:
            return []
        texts = iter(self.masker.mask_many([t for f in facts for t in (f.subject, f.object)]))
        return [dataclasses.replace(f, subject=next(texts), object=next(texts)) for f in facts]

    # ------------------------------------------------------------------ pieces
    def _hit(self, hit: Hit, text: str) -> Hit:
        return dataclasses.replace(hit, chunk=self._chunk(hit.chunk, text), document=self.document(hit.document),
                                   facts=self.facts(hit.facts))

    def _chunk(self, chunk: Chunk, text: str) -> Chunk:
        return dataclasses.replace(chunk, text=text, heading_path=tuple(self.masker.mask_many(list(chunk.heading_path))))


def _cut_point(text: str) -> int:
    """Where ``text`` may be cut for masking: after its last sentence end, else at white space once
    it is long, else 0 (keep waiting)."""
    ends = [m.end() for m in _BOUNDARY.finditer(text)]
    if ends:
        return ends[-1]
    if len(text) >= _MAX_PENDING:
        space = text.rfind(" ")
        return space + 1 if space > 0 else len(text)
    return 0
