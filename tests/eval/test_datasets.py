"""Each dataset format loads from a tiny fixture written here, and bad input fails with a clear message."""
import json
from pathlib import Path

import pytest

from eval.datasets import DatasetError, corpus_files, load_dataset, write_corpus


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_our_jsonl_with_document_sources(tmp_path):
    path = _jsonl(tmp_path / "qa.jsonl", [
        {"id": "q1", "query": "How many days of leave?", "relevant": ["hr/leave.md"], "answer": "25 days"},
        {"id": "q2", "query": "年假几天？", "relevant": {"hr/leave.md": 2, "hr/faq.md": 1}},
        {"id": "q3", "query": "Who is the CEO of Mars?", "relevant": []},
    ])
    dataset = load_dataset(path, corpus=tmp_path / "corpus")
    assert (dataset.format, dataset.level, dataset.corpus_dir) == ("jsonl", "doc", tmp_path / "corpus")
    first, second, third = dataset.queries
    assert first.relevant == {"hr/leave.md": 1.0} and first.answer == "25 days"
    assert second.relevant == {"hr/leave.md": 2.0, "hr/faq.md": 1.0} and second.answer is None
    assert not third.answerable and first.answerable


def test_our_jsonl_with_chunk_ids_is_chunk_level(tmp_path):
    dataset = load_dataset(_jsonl(tmp_path / "gen.jsonl", [{"id": "g1", "query": "q", "relevant": [12, 13]}]))
    assert dataset.level == "chunk" and dataset.queries[0].relevant == {"12": 1.0, "13": 1.0}


def test_a_folder_with_one_jsonl_and_a_corpus_folder(tmp_path):
    _jsonl(tmp_path / "qa.jsonl", [{"query": "q", "relevant": ["a.txt"]}])
    (tmp_path / "corpus").mkdir()
    dataset = load_dataset(tmp_path)
    assert dataset.corpus_dir == tmp_path / "corpus" and dataset.queries[0].id == "1"


@pytest.mark.parametrize("line, message", [
    ("{not json", "qa.jsonl:1: not valid JSON"),
    ('{"relevant": []}', "missing field 'query'"),
    ('{"query": "q", "relevant": "a.md"}', "'relevant' must be a list"),
])
def test_bad_jsonl_lines_name_the_line_and_the_fix(tmp_path, line, message):
    path = tmp_path / "qa.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=message):
        load_dataset(path)


def test_mixed_chunk_ids_and_sources_are_refused(tmp_path):
    path = _jsonl(tmp_path / "qa.jsonl", [{"query": "q", "relevant": [3, "a.md"]}])
    with pytest.raises(DatasetError, match="mixes chunk ids and document sources"):
        load_dataset(path)


def _beir(root: Path, split: str = "test") -> Path:
    root.mkdir()
    _jsonl(root / "corpus.jsonl", [
        {"_id": "d1", "title": "Aspirin", "text": "Aspirin reduces fever."},
        {"_id": "d/2", "title": "", "text": "Ibuprofen is an NSAID."},
    ])
    _jsonl(root / "queries.jsonl", [{"_id": "1", "text": "what reduces fever"}, {"_id": "2", "text": "unjudged"},
                                    {"_id": "3", "text": "only zero scores"}])
    (root / "qrels").mkdir()
    (root / "qrels" / f"{split}.tsv").write_text(
        "query-id\tcorpus-id\tscore\n1\td1\t2\n1\td/2\t1\n3\td1\t0\n", encoding="utf-8")
    return root


def test_beir_folder(tmp_path):
    dataset = load_dataset(_beir(tmp_path / "scifact"))
    assert (dataset.name, dataset.format, dataset.level) == ("scifact", "beir", "doc")
    assert [q.id for q in dataset.queries] == ["1"]  # 2 has no qrels, 3 no positive judgement
    assert dataset.queries[0].relevant == {"d1": 2.0, "d/2": 1.0}
    assert [(r.id, r.title) for r in dataset.records] == [("d1", "Aspirin"), ("d/2", "")]


def test_beir_uses_any_qrels_split_when_there_is_no_test(tmp_path):
    assert load_dataset(_beir(tmp_path / "b", split="dev")).queries[0].id == "1"


def test_beir_qrels_without_header_is_refused(tmp_path):
    root = _beir(tmp_path / "b")
    (root / "qrels" / "test.tsv").write_text("1\td1\t1\n", encoding="utf-8")
    with pytest.raises(DatasetError, match="header 'query-id<TAB>corpus-id<TAB>score'"):
        load_dataset(root)


def _multihop(root: Path) -> Path:
    root.mkdir()
    articles = [
        {"title": "Acme buys Beta", "author": "A", "source": "News", "url": "u1", "body": "Acme bought Beta in May."},
        {"title": "Beta CEO", "author": "B", "source": "News", "url": "u2", "body": "Beta is led by Chen Li."},
    ]
    questions = [
        {"query": "Who leads the firm Acme bought?", "answer": "Chen Li", "question_type": "inference_query",
         "evidence_list": [{"title": "Acme buys Beta", "fact": "Acme bought Beta in May."},
                           {"title": "Beta CEO", "fact": "Beta is led by Chen Li."}]},
        {"query": "Who leads Gamma?", "answer": "Insufficient information.", "question_type": "null_query",
         "evidence_list": []},
    ]
    (root / "corpus.json").write_text(json.dumps(articles), encoding="utf-8")
    (root / "MultiHopRAG.json").write_text(json.dumps(questions), encoding="utf-8")
    return root


def test_multihop_folder_maps_evidence_to_articles_by_title(tmp_path):
    dataset = load_dataset(_multihop(tmp_path / "mh"))
    assert dataset.format == "multihop" and len(dataset.records) == 2
    two_hop, null = dataset.queries
    assert two_hop.relevant == {"Acme buys Beta": 1.0, "Beta CEO": 1.0}
    assert two_hop.evidence == ["Acme bought Beta in May.", "Beta is led by Chen Li."]
    assert two_hop.kind == "inference_query" and two_hop.answer == "Chen Li"
    assert not null.answerable


def test_multihop_questions_file_finds_its_corpus_beside_it(tmp_path):
    root = _multihop(tmp_path / "mh")
    assert len(load_dataset(root / "MultiHopRAG.json").queries) == 2


def test_multihop_evidence_naming_an_unknown_article_is_refused(tmp_path):
    root = _multihop(tmp_path / "mh")
    rows = json.loads((root / "MultiHopRAG.json").read_text())
    rows[0]["evidence_list"][0]["title"] = "No such article"
    (root / "MultiHopRAG.json").write_text(json.dumps(rows), encoding="utf-8")
    with pytest.raises(DatasetError, match="'No such article' is not an article"):
        load_dataset(root)


def test_records_are_written_once_as_text_files_with_the_title_first(tmp_path):
    dataset = load_dataset(_beir(tmp_path / "b"))
    files = write_corpus(dataset, tmp_path / "docs")
    assert files == corpus_files(dataset, tmp_path / "docs")
    assert files["d1"].read_text(encoding="utf-8").splitlines()[0] == "Aspirin"
    assert files["d/2"].name.startswith("d_2-") and files["d/2"].read_text().strip() == "Ibuprofen is an NSAID."


def test_limited_keeps_needed_records_and_fills_up_with_others(tmp_path):
    dataset = load_dataset(_beir(tmp_path / "b"))
    assert [r.id for r in dataset.limited(1, max_docs=1).records] == ["d1", "d/2"]  # both needed by q1


def test_unknown_folder_says_what_a_dataset_looks_like(tmp_path):
    with pytest.raises(DatasetError, match="not a dataset"):
        load_dataset(tmp_path)


def test_hipporag_questions_take_their_gold_titles_and_never_read_the_context(tmp_path):
    (tmp_path / "mini.json").write_text(json.dumps([
        {"_id": "a1", "question": "Who wrote X?", "answer": "Ann", "type": "bridge",
         "supporting_facts": [["X", 0], ["Ann", 2], ["X", 1]], "context": [["Decoy", ["never read"]]]},
        {"id": "m2", "question": "Where?", "answer": "Oslo",
         "paragraphs": [{"title": "Ann", "paragraph_text": "…", "is_supporting": True},
                        {"title": "Decoy", "paragraph_text": "…", "is_supporting": False}]},
    ]), encoding="utf-8")
    (tmp_path / "mini_corpus.json").write_text(json.dumps(
        {"X": ["X is a book", " by Ann."], "Ann": ["Ann lives in Oslo."], "Decoy": ["Nothing."]}), encoding="utf-8")
    dataset = load_dataset(tmp_path)
    assert dataset.format == "hipporag" and [r.id for r in dataset.records] == ["X", "Ann", "Decoy"]
    assert dataset.records[0].text == "X is a book by Ann."
    first, second = dataset.queries
    assert (first.id, list(first.relevant), first.answer, first.kind) == ("a1", ["X", "Ann"], "Ann", "bridge")
    assert list(second.relevant) == ["Ann"]


def test_a_hipporag_corpus_given_as_a_list_of_passages_is_read_too(tmp_path):
    (tmp_path / "q.json").write_text(json.dumps([{"question": "?", "supporting_facts": [["T", 0]]}]))
    (tmp_path / "q_corpus.json").write_text(json.dumps([{"title": "T", "text": "The text.", "idx": 0}]))
    assert load_dataset(tmp_path / "q.json").records[0].text == "The text."
    (tmp_path / "q.json").write_text(json.dumps([{"question": "?", "supporting_facts": [["Missing", 0]]}]))
    with pytest.raises(DatasetError, match="gold title 'Missing' is not a passage of q_corpus.json"):
        load_dataset(tmp_path / "q.json")


def test_a_folder_with_top_level_qrels_and_answer_lists_loads_like_beir(tmp_path):
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "text": "东盟和中国"}\n{"_id": "d2", "text": "无关"}\n')
    (tmp_path / "queries.jsonl").write_text('{"id": 0, "query": "RCEP包括哪些国家", "answer": ["东盟", ["中国", "中华人民共和国"]]}\n')
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n0\td1\t1\n")
    dataset = load_dataset(tmp_path)
    [query] = dataset.queries
    assert (query.query, query.relevant, query.answer) == ("RCEP包括哪些国家", {"d1": 1.0}, "东盟；中国")
    assert query.answer_parts == [["东盟"], ["中国", "中华人民共和国"]]
