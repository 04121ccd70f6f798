"""Synthetic questions from a knowledge base: seeded, valid JSONL our loader reads, grounded in the chunks."""
import json

import pytest

from eval.datasets import load_dataset
from eval.generate import cloze_question, generate, triple_question, write_jsonl
from eval.text import contains
from zhiku.cli import main
from zhiku.kb import KnowledgeBase
from zhiku.records import Chunk, Triple


@pytest.fixture(scope="module")
def kb(tiny_kb, embedder):
    with KnowledgeBase.open(tiny_kb, embedder.name) as opened:
        yield opened


def test_cloze_blanks_a_number_or_a_name():
    question, answer = cloze_question("Expense claims must be submitted within 30 days after the trip ends.")
    assert answer == "30 days" and question == 'Fill in the blank: "Expense claims must be submitted within ____ after the trip ends."'
    question, answer = cloze_question("所有员工必须每九十天更换一次密码。")
    assert answer == "九十天" and question == "填空：「所有员工必须每____更换一次密码。」"
    # Amounts with a unit or currency are preferred to bare numbers such as a day of the month.
    assert cloze_question("Cash at 30 September 2026 stood at EUR 57.3 million.")[1] == "EUR 57.3 million"
    assert cloze_question("客户承担场地改造费用，约人民币85,000元。")[1] == "人民币85,000元"
    assert cloze_question(", Round Rock, Texas is where the customer runs its site.") is None  # a fragment
    assert cloze_question("Too short 5.") is None
    assert cloze_question("there is nothing at all to mask in this plain lower case sentence.") is None


def test_triple_question_uses_the_relation_and_the_sentence_that_states_it():
    chunk = Chunk(text="Intro line. Maria Lopez is the finance director of Acme. Other text.", position=0, n_tokens=9)
    question, answer, evidence = triple_question(Triple("Acme", "Finance director", "Maria Lopez"), chunk)
    assert (question, answer) == ("What is the Finance director of Acme?", "Maria Lopez")
    assert evidence == "Maria Lopez is the finance director of Acme."
    # A verb phrase does not read as "the <relation> of": it becomes a blank after the subject.
    verb = triple_question(Triple("Maria Lopez", "is the finance director of", "Acme"), chunk)
    assert verb[0] == 'Fill in the blank: "Maria Lopez is the finance director of ____"'
    assert triple_question(Triple("Acme", "also known as", "Acme Corp"), chunk) is None
    assert triple_question(Triple("Acme", "located in", "Paris"), chunk) is None  # not stated in this chunk
    zh = Chunk(text="信息安全部的负责人是王芳。", position=0, n_tokens=9)
    assert triple_question(Triple("信息安全部", "负责人", "王芳"), zh)[0] == "信息安全部的负责人是什么？"


def test_generation_is_seeded_and_grounded(kb):
    first = generate(kb, n=4, seed=7, progress=False)
    assert [q.to_json() for q in first] == [q.to_json() for q in generate(kb, n=4, seed=7, progress=False)]
    sources = {d.source for d in kb.documents()}
    texts = {d.source: " ".join(c.text for c in kb.chunks_of(d.id)) for d in kb.documents()}
    assert first and len({q.query for q in first}) == len(first)
    for q in first:
        assert q.relevant[0] in sources and contains(texts[q.relevant[0]], q.answer)
        assert q.evidence and contains(texts[q.relevant[0]], q.evidence[0])


def test_triples_of_a_chunk_become_questions(kb, tiny_kb, embedder, tmp_path):
    import shutil

    copy = tmp_path / "kb"
    shutil.copytree(tiny_kb, copy)
    with KnowledgeBase.open(copy, embedder.name) as writable:
        doc = writable.find_documents("expenses")[0]
        chunk = writable.chunks_of(doc.id)[0]
        writable.replace_triples({doc.id: [Triple("Maria Lopez", "Role", "the finance director", chunk_id=chunk.id)]})
        made = generate(writable, n=10, seed=0, progress=False)
    kinds = {q.type for q in made}
    assert "triple" in kinds and "cloze" in kinds
    triple = next(q for q in made if q.type == "triple")
    assert (triple.query, triple.answer) == ("What is the Role of Maria Lopez?", "the finance director")


def test_written_file_is_a_dataset_our_loader_reads(kb, tmp_path):
    path = tmp_path / "gen.jsonl"
    write_jsonl(generate(kb, n=3, seed=1, progress=False), path)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert rows and all(set(r) == {"id", "query", "relevant", "answer", "evidence", "type"} for r in rows)
    dataset = load_dataset(path)
    assert dataset.level == "doc" and len(dataset.queries) == len(rows) and dataset.queries[0].evidence


def test_cli_generate_writes_jsonl(tiny_kb, tmp_path, capsys):
    out = tmp_path / "q.jsonl"
    assert main(["eval", "generate", "--kb", str(tiny_kb), "--out", str(out), "--n", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["questions"] == 2
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2
