"""The leak-probe fixture itself: the markers are stored, under their groups, and findable."""
from __future__ import annotations

from leak_probe import FINANCE_MARKER, FINANCE_USER, HR_MARKER, HR_USER, PUBLIC_USER, assert_no_marker

from zhiku.kb import KnowledgeBase


def test_restricted_documents_carry_their_groups_and_markers(leak_kb, embedder):
    with KnowledgeBase.open(leak_kb, embedder.name) as kb:
        docs = {d.metadata["relative_path"]: d for d in kb.documents()}
        assert docs["hr/salary_bands.md"].groups == ("hr",)
        assert docs["finance/acquisition.md"].groups == ("finance",)
        assert docs["handbook.md"].groups == ("*",)
        visible = " ".join(c.text for d in kb.documents(PUBLIC_USER) for c in kb.chunks_of(d.id))
        assert_no_marker(visible, PUBLIC_USER)
        assert HR_MARKER in " ".join(c.text for d in kb.documents(HR_USER) for c in kb.chunks_of(d.id))
        assert FINANCE_MARKER in " ".join(c.text for d in kb.documents(FINANCE_USER) for c in kb.chunks_of(d.id))
