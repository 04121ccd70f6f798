"""A synthetic corporate corpus of any size, for benchmarks: deterministic Markdown documents.

Each document is a short policy, report or meeting note about generated people, offices and
products, with headings, lists and a small table, so parsing and chunking do real work. It is
written as plain Markdown so every pipeline under comparison can read it.
"""
from __future__ import annotations

import random
from pathlib import Path

FIRST = ["Anna", "Li", "Omar", "Sofia", "Chen", "Marta", "Kenji", "Priya", "Lucas", "Wei", "Elena", "Tom"]
LAST = ["Schmidt", "Wang", "Haddad", "Rossi", "Zhang", "Nowak", "Sato", "Iyer", "Moreau", "Liu", "Berg", "Okafor"]
CITIES = ["Berlin", "Shanghai", "Lyon", "Austin", "Osaka", "Warsaw", "Pune", "Toronto"]
PRODUCTS = ["AR-7 arm", "Sparrow drone", "Atlas gripper", "Vega controller", "Nimbus sensor", "Orion AGV"]
TOPICS = ["travel", "security", "procurement", "hiring", "maintenance", "quality", "safety", "pricing"]
VERBS = ["approved", "reviewed", "postponed", "extended", "audited", "cancelled", "renewed"]


def _sentence(rng: random.Random) -> str:
    person = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    return rng.choice([
        f"{person}, the head of {rng.choice(TOPICS)} in {rng.choice(CITIES)}, {rng.choice(VERBS)} the plan.",
        f"The {rng.choice(PRODUCTS)} ships from {rng.choice(CITIES)} with a lead time of {rng.randint(2, 40)} days.",
        f"Budget for {rng.choice(TOPICS)} is {rng.randint(10, 900) * 1000} EUR for the year {rng.randint(2024, 2027)}.",
        f"{person} reports to {rng.choice(FIRST)} {rng.choice(LAST)} and works in the {rng.choice(CITIES)} office.",
        f"Requests about {rng.choice(TOPICS)} must be filed within {rng.randint(5, 60)} days of the event.",
        f"The {rng.choice(PRODUCTS)} passed {rng.choice(TOPICS)} tests with a score of {rng.randint(60, 100)} percent.",
    ])


def document(i: int, seed: int = 7) -> str:
    rng = random.Random(seed * 100_003 + i)
    topic = rng.choice(TOPICS)
    lines = [f"# {topic.title()} note {i}", ""]
    for section in range(rng.randint(2, 4)):
        lines += [f"## Part {section + 1}: {rng.choice(TOPICS)}", ""]
        lines += [" ".join(_sentence(rng) for _ in range(rng.randint(3, 7))), ""]
        lines += [f"- {_sentence(rng)}" for _ in range(rng.randint(1, 3))] + [""]
    lines += ["| City | Owner | Budget |", "|---|---|---|"]
    lines += [f"| {rng.choice(CITIES)} | {rng.choice(FIRST)} {rng.choice(LAST)} | {rng.randint(1, 99)}k |"
              for _ in range(3)]
    return "\n".join(lines) + "\n"


def write_corpus(folder: Path, n_docs: int, seed: int = 7) -> Path:
    """Write ``n_docs`` documents under ``folder`` (reused when already complete)."""
    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.md"))) == n_docs:
        return folder
    for i in range(n_docs):
        (folder / f"doc{i:06}.md").write_text(document(i, seed), encoding="utf-8")
    return folder
