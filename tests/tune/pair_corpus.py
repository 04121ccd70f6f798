"""A small knowledge base for the pair and embedder tests: public handbook documents with
query-like titles, several sentences per chunk and a few facts, and one restricted document whose
marker must never reach training data built for everyone."""
from __future__ import annotations

from pathlib import Path

from zhiku.kb import KnowledgeBase
from zhiku.models import Embedder
from zhiku.records import PUBLIC, Chunk, Document, Triple

SECRET = "Quillmoor"  # only the restricted document says it

#: source -> (title, groups, [(passage, [(subject, relation, object)])])
CORPUS: dict[str, tuple[str, tuple[str, ...], list[tuple[str, list[tuple[str, str, str]]]]]] = {
    "travel.md": ("How business travel is reimbursed", (PUBLIC,), [
        ("Hotel costs are reimbursed up to 150 EUR per night in Germany. Receipts must be attached to every "
         "claim. Claims without receipts are returned to the employee.", []),
        ("Expense claims above 5,000 EUR are approved by Marcus Hale, the finance director. Smaller claims are "
         "approved by the team lead within five working days.", [("Marcus Hale", "approves", "expense claims")]),
        ("Employees travelling to China receive a daily allowance of 200 CNY for meals. The allowance is paid "
         "with the next salary and needs no receipts.", []),
    ]),
    "security.md": ("Rules for passwords and security incidents", (PUBLIC,), [
        ("Passwords must be changed every 90 days. They must have at least 14 characters and may not repeat "
         "any of the last five passwords.", []),
        ("Security incidents are reported within 1 hour to the security desk, which Priya Nair leads. The desk "
         "answers the phone day and night.", [("Priya Nair", "leads", "security desk")]),
    ]),
    "laptops.md": ("Replacing your laptop and other devices", (PUBLIC,), [
        ("Laptops are replaced every 4 years. The IT service desk orders the new device and copies your files "
         "before the old one is wiped.", []),
        ("Broken phones are repaired by the vendor under warranty. A loan phone is handed out at the service "
         "desk while yours is away.", []),
    ]),
    "office.md": ("Opening hours of the Shanghai office", (PUBLIC,), [
        ("The Shanghai office opens at 9am and closes at 6pm. Visitors register at the reception on floor 12 "
         "and wear a badge at all times.", []),
        ("Lost badges are replaced by the facilities team for a fee of 20 EUR. A replacement takes two days "
         "to print and activate.", []),
    ]),
    "leave.md": ("Annual leave and parental leave policy", (PUBLIC,), [
        ("Every employee has 28 days of annual leave per year. Up to five unused days may be carried over to "
         "the first quarter of the next year.", []),
        ("Parental leave lasts up to 14 months and can be shared between both parents. Requests are made to HR "
         "at least seven weeks before it starts.", [("Parental leave", "lasts", "up to 14 months")]),
    ]),
    "canteen.md": ("What the staff canteen serves", (PUBLIC,), [
        ("The canteen serves lunch from 11:30 to 14:00 on working days. A vegetarian dish is offered every day "
         "and a vegan one twice a week.", []),
        ("Meals are paid with the staff card at a subsidised price of 4 EUR. Guests pay the full price of "
         "9 EUR at the till.", []),
    ]),
    "board.md": ("Board decisions on strategic projects", ("board",), [
        (f"The board approved project {SECRET} with a budget of 7 million EUR. Olga Brandt leads it and "
         f"reports to the board every quarter about {SECRET}.", [("Olga Brandt", "leads", f"project {SECRET}")]),
        (f"The {SECRET} acquisition closes in March. Its price is kept confidential until the announcement.", []),
    ]),
}


def build_pair_kb(root: Path, embedder: Embedder) -> Path:
    """The corpus above as a knowledge base at ``root``, embedded with ``embedder``."""
    with KnowledgeBase.open(root, embedder.name, embedder.dimension) as kb:
        for source, (title, groups, passages) in CORPUS.items():
            doc = Document(source=f"/corpus/{source}", content_hash=source, title=title, kind="md",
                           language="en", groups=groups)
            chunks = [Chunk(text=text, position=i, n_tokens=len(text.split()), heading_path=(title,))
                      for i, (text, _) in enumerate(passages)]
            triples = [[Triple(s, r, o) for s, r, o in facts] for _, facts in passages]
            kb.put_document(doc, chunks, embedder.embed([c.text for c in chunks]), triples)
    return root
