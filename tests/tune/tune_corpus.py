"""A small knowledge base for the tuning tests: public policy passages that template questions
can be made from (amounts, names, extracted facts), and one restricted document."""
from __future__ import annotations

from pathlib import Path

from zhiku.kb import KnowledgeBase
from zhiku.models import Embedder
from zhiku.records import PUBLIC, Chunk, Document, Triple

SECRET = "Wobbleton"  # only the restricted document says it

#: source -> (groups, [(passage, [(subject, relation, object)])])
CORPUS = {
    "travel.md": ((PUBLIC,), [
        ("Hotel costs are reimbursed up to 150 EUR per night in Germany. Receipts must be attached to every claim.",
         []),
        ("Expense claims above 5,000 EUR are approved by Marcus Hale, the finance director.",
         [("Marcus Hale", "approves", "expense claims")]),
        ("Employees travelling to China receive a daily allowance of 200 CNY for meals and small expenses.", []),
    ]),
    "it.md": ((PUBLIC,), [
        ("Passwords must be changed every 90 days and must have at least 14 characters.", []),
        ("Security incidents are reported within 1 hour to the security desk, which Priya Nair leads.",
         [("Priya Nair", "leads", "security desk")]),
        ("Laptops are replaced every 4 years; the IT service desk orders the new device for you.", []),
    ]),
    "office.md": ((PUBLIC,), [
        ("The Shanghai office opens at 9am and closes at 6pm; visitors register at the reception on floor 12.", []),
        ("Lost badges are replaced by the facilities team for a fee of 20 EUR within 2 days.", []),
    ]),
    "board.md": (("board",), [
        (f"The board approved project {SECRET} with a budget of 7 million EUR, led by Olga Brandt.",
         [("Olga Brandt", "leads", f"project {SECRET}")]),
    ]),
}


def build_tune_kb(root: Path, embedder: Embedder) -> Path:
    with KnowledgeBase.open(root, embedder.name, embedder.dimension) as kb:
        for source, (groups, passages) in CORPUS.items():
            doc = Document(source=f"/corpus/{source}", content_hash=source, title=source.split(".")[0].title(),
                           kind="md", language="en", groups=groups)
            chunks = [Chunk(text=text, position=i, n_tokens=len(text.split())) for i, (text, _) in enumerate(passages)]
            triples = [[Triple(s, r, o) for s, r, o in facts] for _, facts in passages]
            kb.put_document(doc, chunks, embedder.embed([c.text for c in chunks]), triples)
    return root
