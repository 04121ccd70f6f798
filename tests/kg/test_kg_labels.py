"""Label facts: fields ("Owner: Li Na") become triples about the heading they sit under."""
import pytest

from kg.extract import DefaultExtractor
from kg.labels import heading_subject, label_triples, prose
from zhiku.records import Chunk


def facts(text, *heading):
    return {(t.subject, t.relation, t.object) for t in label_triples(text, heading)}


# ----------------------------------------------------------------- the subject
def test_a_field_on_a_slide_is_about_the_slide_title():
    assert facts("Owner: Li Na", "Atlas migration") == {("Atlas migration", "Owner", "Li Na")}


def test_a_chinese_field_is_about_its_heading():
    assert facts("负责人：李娜\n截止日期：2026年6月30日", "阿特拉斯迁移项目") == {
        ("阿特拉斯迁移项目", "负责人", "李娜"), ("阿特拉斯迁移项目", "截止日期", "2026年6月30日")}


def test_generic_headings_are_passed_over_for_the_one_above():
    assert facts("Sponsor: Anna Weber", "Project Falcon", "Contacts") == {("Project Falcon", "Sponsor", "Anna Weber")}


def test_fields_without_a_subject_give_nothing():
    assert facts("Owner: Li Na") == set()
    assert facts("Owner: Li Na", "Overview") == set()


@pytest.mark.parametrize("path, subject", [
    (["K5 Lift — Product Data Sheet", "Technical specifications"], "K5 Lift"),
    (["Customer case study: Bluebonnet Foods", "Results after six months"], "Bluebonnet Foods"),
    (["About Kestrel Robotics"], "Kestrel Robotics"),
    (["Nest 4.2 release notes", "New features"], "Nest 4.2"),
    (["Q3 2026 highlights", "Revenue EUR 21.4 million, +31% year on year"], "Q3 2026 highlights"),
    (["Q3 2026 highlights", "Cash at 30 September 2026: EUR 57.3 million"], "Q3 2026 highlights"),
    (["IT Helpdesk — Frequently Asked Questions", "How do I reset my password?"], "IT Helpdesk"),
    (["3. 分工"], None),
    (["2026"], None),
])
def test_the_heading_subject_is_the_nearest_heading_that_names_something(path, subject):
    assert heading_subject(path) == subject


def test_a_block_that_names_its_own_subject_is_about_it():
    assert facts("Name: Mary Chen\nTitle: CTO\nOffice: Berlin", "Team") == {
        ("Mary Chen", "Title", "CTO"), ("Mary Chen", "Office", "Berlin")}
    assert facts("姓名：王芳\n部门：财务部", "员工信息") == {("王芳", "部门", "财务部")}


def test_a_flattened_json_record_is_about_the_record_its_name_field_names():
    text = "products[0].name: K2 Courier\nproducts[0].specs.payload_kg: 150\nproducts[1].name: K5 Lift\n" \
           "products[1].product_owner: Jonas Becker"
    assert facts(text) == {("K2 Courier", "payload kg", "150"), ("K5 Lift", "product owner", "Jonas Becker")}


# ----------------------------------------------------------------- the fields
def test_fields_are_found_after_middle_dots_sentence_ends_and_joined_labels():
    assert facts("Acme Robotics · Owner: Hannah Vogel, General Counsel · Version 2.1", "Data Retention Policy") == {
        ("Data Retention Policy", "Owner", "Hannah Vogel")}
    assert facts("Rated payload: 250 kg. Maximum speed: 2.0 m/s.", "Helios X2") == {
        ("Helios X2", "Rated payload", "250 kg"), ("Helios X2", "Maximum speed", "2.0 m/s")}
    assert facts("Date: 29 September 2026 Chair: Li Wei", "Architecture sync") == {
        ("Architecture sync", "Date", "29 September 2026"), ("Architecture sync", "Chair", "Li Wei")}


def test_a_plural_label_lists_one_value_per_name():
    assert facts("Attendees: Li Wei (CTO, chair), Nadia Petrova and Jonas Becker", "Sync") == {
        ("Sync", "Attendees", "Li Wei"), ("Sync", "Attendees", "Nadia Petrova"), ("Sync", "Attendees", "Jonas Becker")}
    assert facts("编写：赵磊（销售总监）、孙丽（固件工程师）", "晨曦冷链试点方案") == {
        ("晨曦冷链试点方案", "编写", "赵磊"), ("晨曦冷链试点方案", "编写", "孙丽")}


def test_a_value_is_its_head_unless_it_is_a_literal_whole():
    assert facts("Address: Leopoldstraße 210, 80807 München", "Munich office") == {
        ("Munich office", "Address", "Leopoldstraße 210")}
    assert facts("Date: Tuesday, 6 October 2026, 09:00-11:30 CET", "Leadership meeting") == {
        ("Leadership meeting", "Date", "Tuesday, 6 October 2026, 09:00-11:30 CET")}


def test_literal_values_are_typed_as_values():
    [budget, owner] = label_triples("Budget: EUR 450,000\nOwner: Li Na", ["Orion rollout"])
    assert (budget.object_type, owner.object_type) == ("VALUE", "")


@pytest.mark.parametrize("line", [
    "Remember: at least 14 characters", "Note: bring a photo ID", "For Kestrel Robotics GmbH: Dr. Anna Weber",
    "Choose the gateway closest to you: vpn-muc", "NEST-2290: Map editor lost unsaved changes",
    "Arrive at 09:00 at the reception", "See https://example.com for details", "What changes:",
])
def test_prose_colons_times_identifiers_and_empty_values_are_not_fields(line):
    assert facts(line, "Atlas migration") == set()


# ------------------------------------------------------------ rows and tables
def test_key_value_rows_in_text_are_read_as_table_rows_named_by_their_first_cell():
    text = "Office: Munich | Hours: 08:00–18:00 CET | On-site contact: Martin Gruber"
    assert facts(text, "Office hours") == {("Munich", "Hours", "08:00–18:00 CET"),
                                           ("Munich", "On-site contact", "Martin Gruber")}


def test_a_row_named_by_a_value_is_a_condition_not_an_entity():
    assert facts("Total claim: Up to 2,000 EUR | Approver: Line manager", "Approval limits") == set()


def test_a_parameter_value_table_gives_fields_of_the_heading_subject():
    assert facts("参数: 额定负载 | 数值: 7 kg\n参数: 工作半径 | 数值: 850 mm", "天鹰 T3 机械臂", "技术参数") == {
        ("天鹰 T3 机械臂", "额定负载", "7 kg"), ("天鹰 T3 机械臂", "工作半径", "850 mm")}


# ----------------------------------------------------------- the extractor
def test_prose_leaves_the_sentences_and_ends_each_line():
    assert prose("Owner: Li Na · Kestrel Robotics builds robots\nK5 Lift — Data Sheet") == \
        "Kestrel Robotics builds robots.\nK5 Lift — Data Sheet."


@pytest.fixture(scope="module")
def extractor():
    return DefaultExtractor()


def test_the_default_extractor_adds_label_facts_to_sentence_facts(extractor):
    chunk = Chunk(text="Atlas migration\nOwner: Li Na\nAcme Robotics acquired Initech.", position=0, n_tokens=0,
                  heading_path=("Atlas migration",))
    [triples] = extractor.extract([chunk], "en")
    got = {(t.subject, t.relation, t.object) for t in triples}
    assert {("Atlas migration", "Owner", "Li Na"), ("Acme Robotics", "acquired", "Initech")} <= got
    assert not any("Owner" in t.subject or "Li Na" in t.subject for t in triples)


def test_chinese_fields_do_not_reach_the_sentence_rules(extractor):
    chunk = Chunk(text="编写：赵磊（销售总监）、孙丽（固件工程师）", position=0, n_tokens=0, heading_path=("晨曦冷链试点方案",))
    [triples] = extractor.extract([chunk], "zh")
    assert {t.subject for t in triples} == {"晨曦冷链试点方案"}
