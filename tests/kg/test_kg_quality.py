"""The quality script: its lenient matching rules and its report on the gold set."""
import json

from kg.quality import GOLD, load_gold, main, same_entity, same_relation


def test_gold_set_has_enough_hand_labelled_sentences_in_both_languages():
    gold = load_gold(GOLD)
    sentences = [g for g in gold if g.kind == "text"]
    assert sum(g.lang == "en" for g in sentences) >= 30 and sum(g.lang == "zh" for g in sentences) >= 30
    assert all(g.triples or not g.entities or g.text for g in gold)
    assert {g.split for g in gold} == {"dev", "heldout"}


def test_entities_match_after_normalisation_and_as_whole_words():
    assert same_entity("Acme Corp.", "ACME Corporation")
    assert same_entity("Atlas", "Atlas robot")
    assert not same_entity("Atlas", "Atlassian")
    assert same_entity("华为", "华为技术有限公司")
    assert not same_entity("张", "张伟")


def test_relations_match_on_a_shared_content_word_or_bigram():
    assert same_relation("acquired", "acquire")
    assert same_relation("head of sales", "head of sales at")
    assert not same_relation("founded", "acquired")
    assert same_relation("位于", "总部位于") and not same_relation("位于", "负责")
    assert same_relation("in", "in") and not same_relation("in", "at")


def test_main_prints_scores_per_extractor_and_subset(capsys):
    assert main(["--json"]) == 0
    [report] = json.loads(capsys.readouterr().out)
    assert report["extractor"] == "default"
    assert set(report["scores"]) == {"en", "zh", "table", "dev", "heldout", "labels", "all"}
    assert report["scores"]["all"]["triples"]["f1"] > 0.5


def test_gold_set_holds_label_facts_under_headings_in_both_languages():
    labels = [g for g in load_gold(GOLD) if g.topic == "labels"]
    under_headings = [g for g in labels if g.heading]
    assert {g.lang for g in under_headings} == {"en", "zh"} and len(under_headings) >= 15
    assert {g.split for g in labels} == {"dev", "heldout"}


def test_label_facts_reach_good_quality_on_the_gold_set(capsys):
    assert main(["--json"]) == 0
    [report] = json.loads(capsys.readouterr().out)
    assert report["scores"]["labels"]["triples"]["f1"] >= 0.8
