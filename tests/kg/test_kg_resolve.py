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
