"""A tiny corpus for the retrieval tests: English and Chinese passages, public and restricted
documents, and hand-written triples; ``build_kb`` stores it embedded with a real model.

A plain module (not conftest) so tests can import its names: ``conftest`` is ambiguous when
several test packages each have one."""
from __future__ import annotations

from pathlib import Path

from zhiku.kb import KnowledgeBase
from zhiku.models import Embedder
from zhiku.records import PUBLIC, Chunk, Document, Triple, User

#: source -> (groups, language, [(passage, [(subject, relation, object)])])
CORPUS = {
    "handbook.md": ((PUBLIC,), "en", [
        ("Employees receive 25 days of paid vacation per year. Unused vacation days can be carried over "
         "until March of the following year.", []),
        ("The Berlin office opens at 8am. Visitors must register at the reception desk and wear a badge.", []),
        ("Acme Robotics was founded by Jane Smith in 2009 and is headquartered in Berlin.",
         [("Acme Robotics", "founded by", "Jane Smith"), ("Acme Robotics", "headquartered in", "Berlin")]),
    ]),
    "zh-handbook.md": ((PUBLIC,), "zh", [
        ("员工每年享有十五天带薪年假，未使用的年假可以顺延到次年三月。", []),
        ("公司总部位于上海，研发中心设在杭州。", [("公司总部", "位于", "上海"), ("研发中心", "位于", "杭州")]),
    ]),
    "salaries.md": (("hr",), "en", [
        ("Project Falcon is led by Jane Smith. The confidential salary band for senior engineers is "
         "120,000 to 150,000 euros.",
         [("Project Falcon", "led by", "Jane Smith"), ("Project Falcon", "pays", "senior engineers")]),
    ]),
    "deploy.md": (("eng",), "en", [
        ("Deployments run on Kubernetes clusters that the platform team manages.",
         [("platform team", "manages", "Kubernetes clusters")]),
    ]),
}

EVERYONE = User(sees_all=True)
OUTSIDER = User("guest")  # no groups: public documents only
HR = User("hana", ("hr",))


def build_kb(root: Path, embedder: Embedder, corpus: dict = CORPUS) -> Path:
    """Store ``corpus`` in a new knowledge base at ``root`` (chunks embedded for real)."""
    with KnowledgeBase.open(root, embedder.name, embedder.dimension) as kb:
        for source, (groups, language, passages) in corpus.items():
            doc = Document(source=f"/corpus/{source}", content_hash=source, title=source.split(".")[0],
                           kind="md", language=language, groups=groups)
            chunks = [Chunk(text=text, position=i, n_tokens=len(text.split()), page=1, heading_path=("Intro",))
                      for i, (text, _) in enumerate(passages)]
            triples = [[Triple(s, r, o) for s, r, o in facts] for _, facts in passages]
            kb.put_document(doc, chunks, embedder.embed([c.text for c in chunks]), triples)
    return root
