"""A tiny judged corpus (four documents, English and Chinese, five questions) shared by the eval tests."""
import json
from pathlib import Path

import pytest

from zhiku.settings import Settings

DOCS = {
    "hr/leave.md": "# Leave policy\n\nFull-time employees of Acme Corporation receive 25 days of paid annual leave "
                   "per calendar year. Up to 5 unused days may be carried over with a manager's approval.\n",
    "finance/expenses.md": "# Travel expenses\n\nExpense claims must be submitted within 30 days after the trip "
                           "ends. Claims above 500 euros are approved by Maria Lopez, the finance director.\n",
    "products/nimbus.txt": "Nimbus X2 product sheet\n\nThe Nimbus X2 is a cloud backup appliance made by Acme "
                           "Corporation. It stores 40 TB and costs 12,000 euros.\n",
    "it/security.md": "# 信息安全规定\n\n所有员工必须每九十天更换一次密码。安全事件须在两小时内报告给信息安全部。\n",
}
QUESTIONS = [
    {"id": "leave", "query": "How many days of annual leave do employees get?", "relevant": ["hr/leave.md"],
     "answer": "25 days"},
    {"id": "approver", "query": "Who approves expense claims above 500 euros?", "relevant": ["finance/expenses.md"],
     "answer": "Maria Lopez"},
    {"id": "password", "query": "密码多久更换一次？", "relevant": ["it/security.md"], "answer": "九十天"},
    {"id": "two-docs", "query": "Which company makes the Nimbus X2, and how much leave do its employees get?",
     "relevant": ["products/nimbus.txt", "hr/leave.md"]},
    {"id": "mars", "query": "What is the capital of Mars?", "relevant": []},
]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    for name, text in DOCS.items():
        (root / "corpus" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "corpus" / name).write_text(text, encoding="utf-8")
    (root / "qa.jsonl").write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in QUESTIONS), encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(embedding_model="minilm", workers=1)


@pytest.fixture(scope="session")
def tiny_kb(tiny, settings, embedder) -> Path:
    """The tiny corpus ingested once (the harness tests reuse the same cached knowledge base)."""
    from eval.datasets import load_dataset, prepare_kb

    return prepare_kb(load_dataset(tiny / "qa.jsonl", corpus=tiny / "corpus"), tiny / "cache", settings, embedder,
                      progress=False)
