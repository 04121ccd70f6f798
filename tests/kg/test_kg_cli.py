"""``zhiku graph ...`` end to end: real knowledge base folders, output captured from stdout."""
import io
import json

import networkx as nx
import numpy as np
import pytest

from zhiku.cli import main
from zhiku.records import Chunk, Document

TEXTS = [
    "Peter Gray founded Zenith Labs. Karen Wu is the CFO of Zenith Labs.",
    "Zenith Labs is headquartered in Lisbon.",
    "林峰是星河公司的董事长。",
]


@pytest.fixture
def kb_path(make_kb, put):
    kb = make_kb()
    put(kb, "/docs/people.md", [[("Peter Gray", "founded", "Zenith Labs"), ("Karen Wu", "CFO of", "Zenith Labs")]],
        types={"Peter Gray": "PERSON", "Karen Wu": "PERSON", "Zenith Labs": "ORG"})
    put(kb, "/docs/places.md", [[("Zenith Labs", "headquartered in", "Lisbon")], [("Lisbon", "capital of", "Portugal")]])
    return str(kb.root)


def run(capsys, *argv):
    code = main(["graph", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_build_extracts_triples_for_every_chunk_of_an_existing_knowledge_base(make_kb, capsys):
    kb = make_kb()
    chunks = [Chunk(text=t, position=i, n_tokens=10) for i, t in enumerate(TEXTS)]
    kb.put_document(Document(source="/docs/a.md", content_hash="a"), chunks, np.zeros((3, kb.manifest.dimension), np.float32))
    assert kb.stats()["triples"] == 0
    payload = run_json(capsys, "build", "--kb", str(kb.root))
    assert payload["chunks"] == 3 and payload["triples"] >= 4 and payload["entities"] >= 5
    stored = {(t.subject, t.relation, t.object) for t in kb.triples()}
    assert ("Peter Gray", "founded", "Zenith Labs") in stored
    assert ("林峰", "董事长", "星河公司") in stored
    assert {t.chunk_id for t in kb.triples()} == {c.id for c in kb.chunks_of(1)}


def test_stats(kb_path, capsys):
    payload = run_json(capsys, "stats", "--kb", kb_path, "--limit", "2")
    assert payload["entities"] == 5 and payload["relations"] == 4 and payload["documents"] == 2
    assert payload["top_degree"][0]["name"] == "Zenith Labs" and len(payload["top_pagerank"]) == 2
    code, out, _ = run(capsys, "stats", "--kb", kb_path)
    assert code == 0 and "5 entities, 4 relations" in out


def test_entities_filtered_by_type_and_document(kb_path, capsys):
    rows = run_json(capsys, "entities", "--kb", kb_path)["entities"]
    assert rows[0]["name"] == "Zenith Labs" and len(rows) == 5
    people = run_json(capsys, "entities", "--kb", kb_path, "--type", "person")["entities"]
    assert {r["name"] for r in people} == {"Peter Gray", "Karen Wu"}
    places = run_json(capsys, "entities", "--kb", kb_path, "--doc", "places", "--limit", "10")["entities"]
    assert {r["name"] for r in places} == {"Zenith Labs", "Lisbon", "Portugal"}
    code, _, err = run(capsys, "entities", "--kb", kb_path, "--doc", "nowhere")
    assert code == 2 and "no document matches" in err


def test_neighbors_with_hops_and_limit(kb_path, capsys):
    payload = run_json(capsys, "neighbors", "zenith labs", "--kb", kb_path)
    assert payload["entity"]["name"] == "Zenith Labs" and len(payload["facts"]) == 3
    assert all(f["chunk_id"] and f["doc_id"] for f in payload["facts"])
    far = run_json(capsys, "neighbors", "Peter Gray", "--kb", kb_path, "--hops", "3")
    assert {"name": "Portugal", "key": "portugal", "distance": 3} in far["entities"]
    assert len(run_json(capsys, "neighbors", "Peter Gray", "--kb", kb_path, "--hops", "3", "--limit", "2")["facts"]) == 2
    code, out, _ = run(capsys, "neighbors", "Lisbon", "--kb", kb_path)
    assert code == 0 and "Zenith Labs --[headquartered in]--> Lisbon" in out
    code, _, err = run(capsys, "neighbors", "Atlantis", "--kb", kb_path)
    assert code == 1 and "no entity named 'Atlantis'" in err
    code, _, err = run(capsys, "neighbors", "Lisbon", "--kb", kb_path, "--hops", "0")
    assert code == 2 and "--hops" in err


def test_path(kb_path, capsys):
    payload = run_json(capsys, "path", "Karen Wu", "Portugal", "--kb", kb_path)
    assert payload["found"] and payload["length"] == 3
    assert [f["relation"] for f in payload["facts"]] == ["CFO of", "headquartered in", "capital of"]


def test_export_graphml_and_json(kb_path, capsys, tmp_path):
    graphml, js = tmp_path / "g.graphml", tmp_path / "g.json"
    assert run_json(capsys, "export", str(graphml), "--kb", kb_path)["format"] == "graphml"
    g = nx.read_graphml(graphml)
    assert g.number_of_nodes() == 5 and g.number_of_edges() == 4
    assert all(isinstance(v, (str, int, float)) for _, d in g.nodes(data=True) for v in d.values())
    code, out, _ = run(capsys, "export", str(js), "--kb", kb_path)
    assert code == 0 and "wrote 5 entities and 4 relations" in out
    data = json.loads(js.read_text(encoding="utf-8"))
    assert {n["name"] for n in data["nodes"]} >= {"Zenith Labs", "Lisbon"} and len(data["edges"]) == 4
    code, _, err = run(capsys, "export", str(tmp_path / "g.csv"), "--kb", kb_path)
    assert code == 2 and ".graphml" in err


def test_a_missing_knowledge_base_is_one_clear_line(tmp_path, capsys):
    code, _, err = run(capsys, "stats", "--kb", str(tmp_path / "none"))
    assert code == 1 and "no knowledge base" in err and "Traceback" not in err


SECRETS = ("Vantorix", "Merrowind", "Bluejay")


@pytest.fixture
def acl_kb_path(make_kb, put):
    kb = make_kb()
    put(kb, "/docs/people.md", [[("Peter Gray", "founded", "Zenith Labs"), ("Zenith Labs", "based in", "Lisbon")]])
    put(kb, "/docs/deal.md", [[("Zenith Labs", "acquires", "Vantorix"), ("Ilsa Merrowind", "CFO of", "Vantorix"),
                               ("Zenith Labs", "also known as", "Bluejay"), ("Bluejay", "bids for", "Vantorix")]],
        groups=("finance",))
    return str(kb.root)


def outputs(capsys, tmp_path, kb_path, *who):
    """What every inspecting ``zhiku graph`` command prints (and exports) for the user ``who`` names."""
    export = tmp_path / f"{'-'.join(who) or 'admin'}.json"
    runs = [("entities",), ("stats",), ("neighbors", "Zenith Labs", "--hops", "2"), ("path", "Peter Gray", "Lisbon"),
            ("export", str(export))]
    texts = []
    for argv in runs:
        for as_json in ((), ("--json",)):
            code, out, err = run(capsys, *argv, "--kb", kb_path, *who, *as_json)
            assert code == 0, err
            texts.append(out)
    return "\n".join(texts) + export.read_text(encoding="utf-8")


def test_graph_commands_with_groups_show_only_what_those_groups_may_read(acl_kb_path, capsys, tmp_path):
    public = outputs(capsys, tmp_path, acl_kb_path, "--groups", "eng")
    assert "Zenith Labs" in public and not any(s in public for s in SECRETS)
    finance = outputs(capsys, tmp_path, acl_kb_path, "--groups", "finance")
    assert all(s in finance for s in SECRETS)
    assert all(s in outputs(capsys, tmp_path, acl_kb_path) for s in SECRETS)  # the local admin sees everything
    assert run_json(capsys, "stats", "--kb", acl_kb_path, "--groups", "eng")["relations"] == 2
    assert run_json(capsys, "stats", "--kb", acl_kb_path, "--groups", "finance")["relations"] == 5
    zenith = run_json(capsys, "neighbors", "Zenith Labs", "--kb", acl_kb_path, "--groups", "eng")["entity"]
    assert zenith["aliases"] == ["Zenith Labs"] and zenith["degree"] == 2 and zenith["doc_ids"] == [1]


def test_a_hidden_entity_or_document_is_refused_like_one_that_does_not_exist(acl_kb_path, capsys):
    for name in ("Vantorix", "Atlantis"):
        code, _, err = run(capsys, "neighbors", name, "--kb", acl_kb_path, "--groups", "eng")
        assert code == 1 and f"no entity named {name!r}" in err
        code, _, err = run(capsys, "path", "Peter Gray", name, "--kb", acl_kb_path, "--groups", "eng")
        assert code == 1 and f"no entity named {name!r}" in err
    for doc in ("deal", "2", "nowhere"):
        code, _, err = run(capsys, "entities", "--doc", doc, "--kb", acl_kb_path, "--groups", "eng")
        assert code == 2 and f"no document matches --doc {doc!r}" in err


def test_graph_commands_as_a_stored_user_apply_that_users_groups(acl_kb_path, capsys, monkeypatch):
    for name, groups in (("finn", "finance"), ("pat", "eng")):
        monkeypatch.setattr("sys.stdin", io.StringIO("a long enough secret\n"))
        assert main(["user", "add", name, "--groups", groups, "--password-stdin", "--kb", acl_kb_path]) == 0
    capsys.readouterr()
    names = {r["name"] for r in run_json(capsys, "entities", "--kb", acl_kb_path, "--user", "finn")["entities"]}
    assert {"Vantorix", "Ilsa Merrowind"} <= names
    names = {r["name"] for r in run_json(capsys, "entities", "--kb", acl_kb_path, "--user", "pat")["entities"]}
    assert names == {"Peter Gray", "Zenith Labs", "Lisbon"}
    code, _, err = run(capsys, "entities", "--kb", acl_kb_path, "--user", "ghost")
    assert code == 2 and "no user named 'ghost'" in err
