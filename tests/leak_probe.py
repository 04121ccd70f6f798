"""The leak-probe corpus: restricted documents carrying marker strings that must never reach a
user outside their group, on any surface (search, ask, summaries, graph, UI, API, audit, eval).

Each restricted document carries a text marker (a made-up word no other document contains) and
names entities that only it mentions (so graph names, aliases and types leak if computed from all
triples). ``build_leak_corpus`` writes the files; the ``leak_kb`` fixture in ``conftest.py`` ingests
them once per session. A probe asserts ``assert_no_marker(output, user)`` for a user without the
group and that a user with it does see the marker.
"""
from __future__ import annotations

from pathlib import Path

from zhiku.records import User

#: Text markers, one per restricted group: unique words no public document contains.
HR_MARKER = "Zorblatt"
FINANCE_MARKER = "Quexington"
#: Entities only the finance document names (an organisation and a person): graph-name probes.
FINANCE_ENTITY = "Vantorix Holdings"
FINANCE_PERSON = "Ilsa Merrowind"

MARKERS = {"hr": HR_MARKER, "finance": FINANCE_MARKER}

PUBLIC_USER = User("pat", ("eng",))
HR_USER = User("hana", ("hr",))
FINANCE_USER = User("finn", ("finance",))

ACL = '"hr/**" = ["hr"]\n"finance/**" = ["finance"]\n'

FILES = {
    "handbook.md": (
        "# Employee handbook\n\n"
        "Kestrel Robotics is headquartered in Munich. Anna Weber is the CEO of Kestrel Robotics.\n\n"
        "Employees get 30 days of annual leave. Expense reports are due within 30 days.\n"
    ),
    "hr/salary_bands.md": (
        "# Salary bands 2026\n\n"
        f"The {HR_MARKER} band L5 pays between 88,000 and 104,000 EUR a year. "
        f"The {HR_MARKER} band L6 pays between 105,000 and 125,000 EUR a year.\n\n"
        f"Anna Weber approved the {HR_MARKER} salary bands in October.\n"
    ),
    "finance/acquisition.md": (
        "# Acquisition plan\n\n"
        f"Kestrel Robotics plans to acquire {FINANCE_ENTITY} under the codename {FINANCE_MARKER}. "
        f"{FINANCE_PERSON} is the CFO of {FINANCE_ENTITY}. "
        f"{FINANCE_ENTITY} is headquartered in Rotterdam.\n\n"
        f"The {FINANCE_MARKER} deal values {FINANCE_ENTITY} at 240 million EUR.\n"
    ),
}


def build_leak_corpus(root: Path) -> Path:
    """Write the leak-probe corpus (and its ``zhiku-acl.toml``) under ``root``; returns ``root``."""
    for relative, text in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    (root / "zhiku-acl.toml").write_text(ACL, encoding="utf-8")
    return root


def restricted_markers(user: User) -> list[str]:
    """The markers ``user`` must not see (those of groups they are not in)."""
    return [m for group, m in MARKERS.items() if group not in user.groups] + (
        [FINANCE_ENTITY, FINANCE_PERSON] if "finance" not in user.groups else []
    )


def assert_no_marker(output: object, user: User) -> None:
    """Fail if any marker ``user`` may not see occurs in ``output`` (rendered with ``str``)."""
    text = str(output)
    leaked = [m for m in restricted_markers(user) if m.lower() in text.lower()]
    assert not leaked, f"{user.name} (groups {user.groups}) saw {leaked} in: {text[:500]}"
