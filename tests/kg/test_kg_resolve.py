"""Entity resolution: which surface forms name one entity."""
from kg.resolve import canonical_key, normalize, resolve
from zhiku.records import Triple


def test_normalize_folds_width_case_whitespace_and_punctuation():
    assert normalize("  ＡＣＭＥ　Robotics, Inc. ") == "acme robotics inc"
    assert normalize("The Acme") == "acme"
    assert normalize("华为 技术") == "华为技术"


def test_canonical_key_drops_corporate_suffixes_but_not_whole_names():
    assert canonical_key("Acme Corp.") == canonical_key("Acme Corporation") == "acme"
    assert canonical_key("Initech Ltd") == canonical_key("INITECH") == "initech"
    assert canonical_key("华为技术有限公司") == canonical_key("华为技术") == "华为"
    assert canonical_key("腾讯公司") == "腾讯"
    assert canonical_key("有限公司") == "有限公司"
    assert canonical_key("Co") == "co"


def _keys(*triples: Triple) -> dict[str, str]:
    return resolve(triples).key_of


def test_spelling_variants_become_one_entity_keeping_every_surface_form():
    res = resolve([
        Triple("Acme Corp.", "acquired", "Umbrella Ltd", subject_type="ORG", doc_id=1),
        Triple("Acme Corporation", "hired", "Mary Chen", subject_type="ORG", object_type="PERSON", doc_id=2),
        Triple("ACME CORP", "based in", "Berlin", doc_id=2),
    ])
    acme = res.entities[res.key("Acme Corp.")]
    assert acme.aliases == {"Acme Corp.", "Acme Corporation", "ACME CORP"}
    assert acme.type == "ORG" and acme.mentions == 3 and acme.doc_ids == {1, 2}
    assert res.key("acme corporation") == acme.key


def test_an_acronym_merges_with_the_one_name_whose_initials_it_spells():
    res = resolve([
        Triple("Acme Robotics", "based in", "Berlin"),
        Triple("AR", "acquired", "Initech"),
    ])
    assert res.key("AR") == res.key("Acme Robotics")
    assert res.entities[res.key("AR")].name == "Acme Robotics"


def test_an_ambiguous_acronym_stays_apart():
    res = resolve([
        Triple("Acme Robotics", "based in", "Berlin"),
        Triple("Apex Resources", "based in", "Paris"),
        Triple("AR", "acquired", "Initech"),
    ])
    assert res.key("AR") not in {res.key("Acme Robotics"), res.key("Apex Resources")}


def test_an_alias_triple_merges_even_without_matching_letters():
    res = resolve([
        Triple("华为技术有限公司", "简称", "华为"),
        Triple("Zenith Labs", "also known as", "ZL Group"),
        Triple("华为", "位于", "深圳"),
    ])
    assert res.key("华为") == res.key("华为技术有限公司")
    assert res.key("ZL Group") == res.key("Zenith Labs")


def test_different_names_stay_different_entities():
    keys = _keys(Triple("Mary Chen", "works for", "Initech"), Triple("Mary Cheng", "works for", "Initrode"))
    assert len(set(keys.values())) == 4


def t(subject: str, relation: str, obj: str, subject_type: str = "", object_type: str = "") -> Triple:
    return Triple(subject, relation, obj, subject_type=subject_type, object_type=object_type)


def test_a_name_spanning_lines_is_the_name_on_its_last_line():
    got = resolve([t("Kestrel Robotics \n Kestrel Robotics", "founded in", "Munich"),
                   t("Kestrel Robotics", "builds", "robots")])
    assert got.key("Kestrel Robotics \n Kestrel Robotics") == got.key("Kestrel Robotics") == "kestrel robotics"
    assert got.entities["kestrel robotics"].name == "Kestrel Robotics"
    assert resolve([t("Service levels \n Kestrel", "guarantees", "uptime")]).entities["kestrel"].name == "Kestrel"


def test_a_trailing_parenthesis_qualifies_a_name_and_a_title_is_not_part_of_it():
    assert canonical_key("Munich (HQ)") == canonical_key("Munich (Germany)") == "munich"
    assert canonical_key("Li Wei (李伟)") == "li wei" and canonical_key("Kestrel Robotics (红隼机器人)") == "kestrel robotics"
    assert canonical_key("Dr. Anna Weber") == canonical_key("Anna Weber")
    assert canonical_key("(AR)") == "ar" and canonical_key("Prof. X") == "prof x"


def test_a_one_word_name_merges_into_the_one_organisation_it_starts():
    got = resolve([t("Kestrel Robotics GmbH", "supplies", "Nordhafen Logistik GmbH", "ORG", "ORG"),
                   t("Kestrel", "guarantees", "uptime", "PERSON"), t("Kestrel VPN", "needs", "YubiKey"),
                   t("Nordhafen", "orders", "robots", "ORG")])
    assert got.key("Kestrel") == got.key("Kestrel Robotics GmbH")
    assert got.key("Nordhafen") == got.key("Nordhafen Logistik GmbH")
    assert got.key("Kestrel VPN") != got.key("Kestrel")


def test_a_place_or_a_word_starting_two_organisations_stays_apart():
    got = resolve([t("Munich", "hosts", "Oktoberfest", "GPE"), t("Munich Re", "insures", "Acme", "ORG"),
                   t("Globex Labs", "owns", "Globex Capital", "ORG", "ORG"), t("Globex", "sells", "widgets")])
    assert got.key("Munich") != got.key("Munich Re")
    assert len({got.key("Globex"), got.key("Globex Labs"), got.key("Globex Capital")}) == 3
