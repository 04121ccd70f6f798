"""Relations keep their objects: a date or an amount after the object says when or how much, it does
not take the object's place ("replaces the legacy billing system by Q3")."""
import pytest

from kg.extract import DefaultExtractor
from kg.resolve import is_attribute
from zhiku.records import Chunk


@pytest.fixture(scope="module")
def extractor():
    return DefaultExtractor()


def facts(extractor, text):
    [triples] = extractor.extract([Chunk(text=text, position=0, n_tokens=0)], "en")
    return triples


@pytest.mark.parametrize("sentence, subject, relation, obj", [
    ("Initech replaces the legacy billing system by Q3.", "Initech", "replaces", "legacy billing system"),
    ("Globex Corporation replaced its old ticketing tool in 2025.", "Globex Corporation", "replaced",
     "old ticketing tool"),
    ("Acme Robotics launched the new scheduling module on 12 May 2026.", "Acme Robotics", "launched",
     "new scheduling module"),
])
def test_a_plain_object_stays_the_fact_when_only_a_date_follows(extractor, sentence, subject, relation, obj):
    triples = facts(extractor, sentence)
    assert (subject, relation, obj) in {(t.subject, t.relation, t.object) for t in triples}
    # the date is kept as when, an attribute of the subject, under the bare verb
    [when] = [t for t in triples if is_attribute(t)]
    assert when.subject == subject and when.relation.split()[0] == relation
    assert obj.split()[-1] not in when.relation


def test_an_object_that_carries_the_relation_to_a_name_joins_the_relation(extractor):
    got = {(t.subject, t.relation, t.object) for t in facts(extractor, "Initech supplies batteries to Hooli.")}
    assert got == {("Initech", "supplies batteries to", "Hooli")}


def test_a_date_does_not_borrow_the_object_a_name_took(extractor):
    got = {(t.subject, t.relation, t.object) for t in facts(extractor, "Acme Robotics will migrate its payroll to "
                                                                          "Initech by March.")}
    assert got == {("Acme Robotics", "migrate payroll to", "Initech"), ("Acme Robotics", "migrate by", "March")}


def test_an_agreement_with_a_name_stays_one_relation(extractor):
    got = {(t.subject, t.relation, t.object) for t in facts(extractor, "Initech signed a supply agreement with "
                                                                          "Umbrella Ltd in 2024.")}
    assert ("Initech", "signed agreement with", "Umbrella Ltd") in got
    assert not any(o == "supply agreement" for _, _, o in got)


def test_a_named_object_with_a_date_and_an_amount_keeps_all_three(extractor):
    got = {(t.subject, t.relation, t.object) for t in facts(extractor, "Acme Robotics acquired Initech in 2021 for "
                                                                          "$40 million.")}
    assert got == {("Acme Robotics", "acquired", "Initech"), ("Acme Robotics", "acquired in", "2021"),
                   ("Acme Robotics", "acquired for", "$40 million")}


def test_a_name_never_runs_from_a_heading_into_the_sentence_under_it(extractor):
    triples = facts(extractor, "About Kestrel Robotics\nKestrel Robotics was founded in Munich by Anna Weber.")
    assert not any("\n" in t.subject or "\n" in t.object for t in triples)
    assert ("Kestrel Robotics", "founded in", "Munich") in {(t.subject, t.relation, t.object) for t in triples}
