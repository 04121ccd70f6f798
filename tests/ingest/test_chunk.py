"""Chunks respect structure and sentences, and never exceed the embedding model's window."""
from __future__ import annotations

from ingest.chunk import ChunkPolicy, chunk_elements
from zhiku.text import split_sentences
from zhiku.records import Element


def policy(embedder, budget=64, overlap=16) -> ChunkPolicy:
    return ChunkPolicy(budget=budget, overlap=overlap, max_tokens=embedder.max_tokens)


def test_no_chunk_exceeds_budget_or_model_limit(embedder) -> None:
    long_english = " ".join(f"Sentence number {i} explains the expense policy in detail." for i in range(200))
    no_punctuation = "word " * 3000
    chinese = "员工出差期间的住宿标准根据城市等级确定，一线城市每晚不超过八百元" * 60
    elements = [Element(t, "text", 1, ("Policy",)) for t in (long_english, no_punctuation, chinese)]
    for budget in (32, 128, 256):
        chunks = chunk_elements(elements, embedder.count_tokens, policy(embedder, budget, budget // 4))
        counted = embedder.count_tokens([c.text for c in chunks])
        assert max(counted) <= embedder.max_tokens
        assert [c.n_tokens for c in chunks] == counted
        assert max(counted) <= budget + 8  # joins may merge a few tokens; the hard limit above holds
    assert all(c.position == i for i, c in enumerate(chunks))


def test_chunks_never_span_sections_or_pages(embedder) -> None:
    elements = [
        Element("Leave", "title", 1, ()),
        Element("Employees get 28 days of leave.", "text", 1, ("Leave",)),
        Element("Travel", "title", 1, ()),
        Element("Economy class for flights under 6 hours.", "text", 1, ("Travel",)),
        Element("Hotels are capped at 180 EUR.", "text", 2, ("Travel",)),
    ]
    chunks = chunk_elements(elements, embedder.count_tokens, policy(embedder, 200))
    assert [(c.heading_path, c.page) for c in chunks] == [(("Leave",), 1), (("Travel",), 1), (("Travel",), 2)]
    assert chunks[0].text == "Leave\nEmployees get 28 days of leave."


def test_table_rows_and_list_items_stay_whole(embedder) -> None:
    rows = [Element(f"City: City{i} | Hotel cap: {100 + i} EUR | Per diem: {40 + i} EUR", "table", None, ("Caps",))
            for i in range(40)]
    chunks = chunk_elements(rows, embedder.count_tokens, policy(embedder, 64, 0))
    assert len(chunks) > 1
    lines = [line for c in chunks for line in c.text.split("\n")]
    assert lines == [r.text for r in rows]
    assert {c.kind for c in chunks} == {"table"}


def test_overlap_repeats_trailing_sentences_within_a_section(embedder) -> None:
    text = " ".join(f"Fact {i} is about the travel policy." for i in range(30))
    chunks = chunk_elements([Element(text, "text", None, ("T",))], embedder.count_tokens, policy(embedder, 48, 16))
    assert len(chunks) > 2
    for first, second in zip(chunks, chunks[1:]):
        repeated = split_sentences(second.text)[0]
        assert repeated in split_sentences(first.text)[-2:]


def test_titles_alone_make_no_chunk(embedder) -> None:
    assert chunk_elements([Element("Appendix", "title")], embedder.count_tokens, policy(embedder)) == []


def test_a_paragraph_that_ends_no_sentence_keeps_its_own_line(embedder) -> None:
    """"Owner: Li Na" stays a line of its own, so its value never runs into the next paragraph."""
    elements = [Element("Atlas migration", "title", 1, ()),
                *(Element(t, "text", 1, ("Atlas migration",)) for t in (
                    "Owner: Li Na", "Marcus Hale approves the budget.", "It ships in May.", "出差标准如下：", "每晚八百元。"))]
    (chunk,) = chunk_elements(elements, embedder.count_tokens, policy(embedder, 200))
    assert chunk.text == ("Atlas migration\nOwner: Li Na\nMarcus Hale approves the budget. It ships in May."
                          "出差标准如下：\n每晚八百元。")
