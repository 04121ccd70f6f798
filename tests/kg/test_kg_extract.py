"""The offline extractor and the LLM extractor: what they read out of chunks, and that they never raise."""
import logging

import pytest
from llama_index.core.llms import CompletionResponse, CustomLLM, LLMMetadata
from llama_index.core.llms.callbacks import llm_completion_callback

from kg.extract import DefaultExtractor, LLMExtractor, load_extractor, parse_llm_triples
from kg.table import table_triples
from zhiku.records import Chunk
from zhiku.settings import Settings, SettingsError


@pytest.fixture(scope="module")
def extractor():
    return DefaultExtractor()


def facts(extractor, text, kind="text"):
    [triples] = extractor.extract([Chunk(text=text, position=0, n_tokens=0, kind=kind)], "en")
    return {(t.subject, t.relation, t.object) for t in triples}


def test_subject_verb_object(extractor):
    assert ("Peter Gray", "founded", "Zenith Labs") in facts(extractor, "Peter Gray founded Zenith Labs.")


def test_passive_with_agent_is_turned_around_and_keeps_its_prepositions(extractor):
    got = facts(extractor, "Zenith Labs was founded by Peter Gray in 2011.")
    assert got == {("Peter Gray", "founded", "Zenith Labs"), ("Zenith Labs", "founded in", "2011")}


def test_apposition_gives_a_role_relation(extractor):
    got = facts(extractor, "Karen Wu, the head of marketing at Orbital Dynamics, spoke in Toronto.")
    assert ("Karen Wu", "head of marketing at", "Orbital Dynamics") in got
    assert ("Karen Wu", "spoke in", "Toronto") in got


def test_copula_gives_a_role_relation(extractor):
    assert facts(extractor, "Ana Silva is the CFO of Blue Harbor Logistics.") == {
        ("Ana Silva", "CFO of", "Blue Harbor Logistics")}
    assert ("Orbital Dynamics", "division of", "Zenith Labs") in facts(extractor, "Orbital Dynamics is a division of Zenith Labs.")


def test_coordinated_objects_and_roles(extractor):
    assert facts(extractor, "Blue Harbor Logistics acquired Prime Estates and Zenith Labs.") == {
        ("Blue Harbor Logistics", "acquired", "Prime Estates"), ("Blue Harbor Logistics", "acquired", "Zenith Labs")}
    assert facts(extractor, "Ana Silva is the CFO of Blue Harbor Logistics and a director of Prime Estates.") == {
        ("Ana Silva", "CFO of", "Blue Harbor Logistics"), ("Ana Silva", "director of", "Prime Estates")}


def test_negated_statements_are_not_facts(extractor):
    assert facts(extractor, "Peter Gray did not found Orbital Dynamics.") == set()


def test_possessive_role_and_as_complement(extractor):
    assert ("Paula Reed", "general counsel of", "Zenith") in facts(
        extractor, "Paula Reed, Zenith's general counsel, oversees compliance.")
    assert ("Karen Wu", "vice president of sales for", "Zenith Labs") in facts(
        extractor, "Peter Gray hired Karen Wu as vice president of sales for Zenith Labs.")


def test_prepositional_attachment_keeps_the_object_in_the_relation(extractor):
    assert ("Zenith Labs", "sells sensors to", "Blue Harbor Logistics") in facts(
        extractor, "Zenith Labs sells sensors to Blue Harbor Logistics.")
    assert ("Zenith Labs", "opened office in", "Lisbon") in facts(extractor, "Zenith Labs opened an office in Lisbon.")


def test_pronouns_resolve_to_the_last_person_named(extractor):
    got = facts(extractor, "Peter Gray founded Zenith Labs. He was promoted to head of research at Orbital Dynamics.")
    assert ("Peter Gray", "head of research at", "Orbital Dynamics") in got


def test_an_acronym_defined_in_parentheses_becomes_an_alias(extractor):
    assert ("Zenith Labs", "also known as", "ZL") in facts(extractor, "Zenith Labs (ZL) opened an office in Lisbon.")


def test_a_place_or_role_in_parentheses_is_not_an_alias(extractor):
    text = ("This policy applies to employees of Kestrel Robotics GmbH (Munich) and Kestrel Robotics Inc. (Austin). "
            "Questions go to Tomasz Nowak (CISO).")
    assert not [t for t in facts(extractor, text) if t[1] == "also known as"]


def test_chinese_patterns(extractor):
    assert facts(extractor, "孙悦是银河公司的首席财务官，负责预算管理。") == {
        ("孙悦", "首席财务官", "银河公司"), ("孙悦", "负责", "预算管理")}
    assert facts(extractor, "深圳分公司隶属于华南区事业部。") == {("深圳分公司", "隶属于", "华南区事业部")}
    assert facts(extractor, "海康位于杭州市滨江区。") == {("海康", "位于", "杭州市滨江区")}
    assert facts(extractor, "刘刚于2019年加入小米集团，担任产品经理。") == {
        ("刘刚", "加入", "小米集团"), ("刘刚", "产品经理", "小米集团")}
    assert facts(extractor, "人力资源部和法务部由赵强统一管理。") == {
        ("赵强", "管理", "人力资源部"), ("赵强", "管理", "法务部")}


def test_chinese_alias_and_learned_brand_names(extractor):
    assert ("星辰科技有限公司", "简称", "星辰") in facts(extractor, "星辰科技有限公司（简称星辰）成立于2018年。")
    # The brand learned above is now an organisation on its own.
    assert facts(extractor, "星辰与北京大学开展合作。") == {("星辰", "开展合作", "北京大学")}


@pytest.mark.parametrize("text", [
    "Name: Ana Silva | Title: CFO | Office: Lisbon",
    "| Name | Title | Office |\n|---|---|---|\n| Ana Silva | CFO | Lisbon |",
    "Name,Title,Office\nAna Silva,CFO,Lisbon",
    "Name\tTitle\tOffice\nAna Silva\tCFO\tLisbon",
])
def test_table_rows_become_row_entity_header_value(extractor, text):
    assert facts(extractor, text, kind="table") == {("Ana Silva", "Title", "CFO"), ("Ana Silva", "Office", "Lisbon")}


def test_a_table_flattened_to_words_yields_nothing():
    assert table_triples("Ana Silva CFO Lisbon Peter Gray CEO Porto") == []


@pytest.mark.parametrize("text", ["", "   ", "The weather was nice.", "今天天气很好。", "12.5% 2024", "🙂🙂🙂", "\x00\x01"])
def test_chunks_without_entities_yield_no_triples_and_no_error(extractor, text):
    assert facts(extractor, text) == set()


def test_results_are_aligned_with_chunks_and_carry_their_provenance(extractor):
    chunks = [
        Chunk(text="Peter Gray founded Zenith Labs.", position=0, n_tokens=0, id=7, doc_id=3),
        Chunk(text="Nothing here.", position=1, n_tokens=0, id=8, doc_id=3),
        Chunk(text="林峰创立了星河公司。", position=2, n_tokens=0, id=9, doc_id=3),
    ]
    out = extractor.extract(chunks, "en")
    assert [len(ts) > 0 for ts in out] == [True, False, True]
    assert {(t.chunk_id, t.doc_id) for t in out[0]} == {(7, 3)}
    assert {(t.chunk_id, t.doc_id) for t in out[2]} == {(9, 3)}


def test_a_chunk_that_breaks_the_rules_is_logged_and_skipped(extractor, caplog, monkeypatch):
    def broken(text):
        raise RuntimeError("boom")

    monkeypatch.setattr(extractor._chinese, "triples", broken)
    chunks = [Chunk(text="林峰创立了星河公司。", position=0, n_tokens=0, id=1),
              Chunk(text="Peter Gray founded Zenith Labs.", position=1, n_tokens=0, id=2)]
    with caplog.at_level(logging.WARNING):
        out = extractor.extract(chunks, "zh")
    assert out[0] == [] and out[1]
    assert "chunk 1" in caplog.text and "boom" in caplog.text


class FixedLLM(CustomLLM):
    """A stand-in for an LLM server: answers each prompt with the next canned reply."""

    replies: list[str]
    prompts: list[str] = []

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="fixed")

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs) -> CompletionResponse:
        self.prompts.append(prompt)
        return CompletionResponse(text=self.replies.pop(0) if self.replies else "[]")

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs):
        yield self.complete(prompt)


GOOD = '```json\n[{"subject": "Ana Silva", "relation": "CFO of", "object": "Blue Harbor", "subject_type": "person", "object_type": "ORG"}]\n```'
CHUNK = Chunk(text="Ana Silva is the CFO of Blue Harbor.", position=0, n_tokens=0, id=5, doc_id=2)


def test_llm_extractor_reads_json_triples_with_provenance():
    llm = FixedLLM(replies=[GOOD], prompts=[])
    [triples] = LLMExtractor(llm).extract([CHUNK], "en")
    assert [(t.subject, t.relation, t.object, t.subject_type, t.chunk_id, t.doc_id) for t in triples] == [
        ("Ana Silva", "CFO of", "Blue Harbor", "PERSON", 5, 2)]
    assert CHUNK.text in llm.prompts[0]


def test_llm_extractor_retries_once_on_bad_json_then_skips(caplog):
    llm = FixedLLM(replies=["Sure! Here are the facts: Ana is CFO.", GOOD], prompts=[])
    assert len(LLMExtractor(llm).extract([CHUNK], "en")[0]) == 1
    assert len(llm.prompts) == 2
    llm = FixedLLM(replies=["no json", "{broken"], prompts=[])
    with caplog.at_level(logging.WARNING):
        assert LLMExtractor(llm).extract([CHUNK], "en") == [[]]
    assert "without valid JSON twice" in caplog.text


def test_llm_garbage_items_and_invented_facts_are_dropped():
    reply = ('{"triples": [["Ana Silva", "CFO of", "Blue Harbor"], {"subject": 3, "relation": "x", "object": "y"},'
             ' {"subject": "Elvis", "relation": "founded", "object": "Mars Inc"}, "junk"]}')
    assert [(t.subject, t.object) for t in parse_llm_triples(reply, CHUNK.text)] == [("Ana Silva", "Blue Harbor")]
    assert parse_llm_triples("42", CHUNK.text) is None
    [compact] = parse_llm_triples('[["Ana Silva", "CFO of", "Blue Harbor", "PERSON", "ORG"]]', CHUNK.text)
    assert (compact.subject, compact.object_type) == ("Ana Silva", "ORG")


def test_a_failing_llm_backend_skips_the_chunk(caplog):
    class DownLLM(FixedLLM):
        @llm_completion_callback()
        def complete(self, prompt, formatted=False, **kwargs):
            raise ConnectionError("server down")

    with caplog.at_level(logging.WARNING):
        assert LLMExtractor(DownLLM(replies=[], prompts=[])).extract([CHUNK, CHUNK], "en") == [[], []]
    assert "server down" in caplog.text


def test_load_extractor_by_settings(extractor):
    assert load_extractor(Settings(extractor="none")) is None
    assert load_extractor(Settings(extractor="llm"), llm=lambda: FixedLLM(replies=[], prompts=[])).name == "llm"
    with pytest.raises(SettingsError, match="needs an LLM"):
        load_extractor(Settings(extractor="llm"))
    with pytest.raises(SettingsError, match="default, llm, none"):
        load_extractor(Settings(extractor="spacy"))


def test_table_rows_as_ingest_writes_them():
    # A caption line, then rows; a first cell without a header names its row.
    text = "Office budgets\nCity: Lyon | Owner: Marta Nowak | Budget: 40k\nPune | Owner: Priya Iyer"
    assert {(t.subject, t.relation, t.object) for t in table_triples(text)} == {
        ("Lyon", "Owner", "Marta Nowak"), ("Lyon", "Budget", "40k"), ("Pune", "Owner", "Priya Iyer")}
    # JSON records flattened one key per line: a record starts where the first key returns.
    records = "name: Atlas\nowner.team: Robotics\nname: Vega\nowner.team: Controls"
    assert {(t.subject, t.relation, t.object) for t in table_triples(records)} == {
        ("Atlas", "owner.team", "Robotics"), ("Vega", "owner.team", "Controls")}
