"""The labelled sample set stays in step with the sample corpus generator."""
from collections import Counter
from pathlib import Path

from eval.datasets import load_dataset

SAMPLE_QA = Path(__file__).resolve().parents[2] / "eval" / "data" / "sample_qa.jsonl"


def test_every_label_names_a_file_of_the_sample_corpus(sample_corpus):
    dataset = load_dataset(SAMPLE_QA, corpus=sample_corpus)
    missing = {ref for q in dataset.queries for ref in q.relevant if not (sample_corpus / ref).is_file()}
    assert not missing


def test_the_set_mixes_languages_two_document_and_unanswerable_questions():
    dataset = load_dataset(SAMPLE_QA)
    kinds = Counter(q.kind for q in dataset.queries)
    assert len(dataset.queries) >= 50 and len({q.id for q in dataset.queries}) == len(dataset.queries)
    assert kinds["single-zh"] >= 10 and kinds["multi-doc"] >= 5 and kinds["unanswerable"] >= 3
    assert all(len(q.relevant) >= 2 for q in dataset.queries if q.kind == "multi-doc")
    assert all(q.answer for q in dataset.queries if q.answerable)
