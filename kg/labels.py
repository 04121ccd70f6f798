"""Label facts: ``Label: value`` lines and key/value blocks, tied to the heading they sit under.

Slides, forms, policies and data sheets state facts as fields, not sentences: "Owner: Li Na" on a
slide titled "Atlas migration", "负责人：李娜" under a heading, "Rated payload: 1,000 kg." on a data
sheet. No sentence names the subject, so the sentence rules find nothing; here every field becomes
(subject, label, value):

- the subject is the nearest heading of the chunk's heading path that names something (see
  ``heading_subject``): generic section headings ("Technical specifications", 概述), questions and
  bullet lines the parser took for titles are passed over for the heading above them;
- a block whose first field names its own subject ("Name: Mary Chen", 姓名：张伟, a JSON record's
  ``products[0].name``) is about that subject, not the heading;
- rows of ``Key: value | Key: value`` cells are read as table rows (``kg.table``): their first cell
  names the row.

Fields are found at line starts, after `` · `` separators, after a sentence end (a data sheet's
"Label: value." run) and before a capitalised label inside a line that a parser joined ("... CST
Attendees: Li Wei"). Values are cut at their first clause mark unless they are literals whole
(dates with times, amounts): literals become the subject's attributes downstream
(``kg.resolve.is_attribute``), names become relations. Labels that are discourse ("Note",
"Remember") or prepositional phrases ("For Kestrel Robotics GmbH") are not fields.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from kg.resolve import is_literal
from kg.table import table_triples
from zhiku.records import Triple
from zhiku.text import CJK, has_cjk

#: Longest label, in words (Latin) or characters (Chinese).
MAX_LABEL_WORDS, MAX_LABEL_CHARS = 6, 10
#: Longest value kept, in words (Latin) or characters (Chinese); longer is prose, not a field value.
MAX_VALUE_WORDS, MAX_VALUE_CHARS = 10, 30
#: Labels whose value names the block's own subject.
NAMING_LABELS = frozenset({"name", "full name", "product", "project", "company", "customer", "title of project",
                           "姓名", "名称", "产品", "项目", "项目名称", "公司", "客户", "产品名称"})
#: Column headers of a two-column "parameter | value" table: its rows are fields of the heading's subject.
VALUE_HEADERS = frozenset({"value", "values", "数值", "值", "参数值", "内容"})
#: Labels that introduce prose, not a field.
DISCOURSE_LABELS = frozenset("""note notes remember tip important warning caution example examples question
questions answer help see also please dear hint reminder update fyi re subject 注意 注 备注 提示 例如 说明""".split())
#: Words of headings that name a part of a document, not a subject ("Technical specifications").
GENERIC_HEADING_WORDS = frozenset("""overview summary introduction background detail details specification
specifications technical tech spec specs contact contacts ordering order safety risk risks note notes faq
faqs appendix general key facts fact information info description feature features service services
warranty pricing prices price scope purpose status next steps step action actions items item agenda minutes
attendees decisions questions answers references about contents content signatures signature terms
conditions definitions glossary results result conclusion conclusions table figure datasheet
frequently asked and of the a an for our your this document documents section chapter part welcome to
release new improvements fixed issues changes known changelog highlights sheet case study customer post-mortem
postmortem pilot plan report review memo proposal brief 方案 试点方案 报告 纪要 介绍 产品介绍 工作报告 主要参数 技术规格 主要
概述 简介 背景 详情 说明 联系方式 注意事项 附录 总结 基本信息 技术参数 规格 参数 目的 范围 议程 会议纪要 结论 备注
常见问题 问题 附件 目录 签字 签名 分工""".split())
_PREPOSITIONS = frozenset("for in at on to by with from of as if when after before during until since per under over".split())
_PRONOUNS = frozenset("i you your we our us it its they their he she his her my this these those".split())
_NUMBERING = re.compile(r"^\s*(?:\d+(?:\.\d+)*[.)、]|[（(]?[一二三四五六七八九十]+[)）、.]|第[一二三四五六七八九十\d]+[章节条部分]"
                        r"|[A-Z][.)]|[-•*·▪►])\s*")
_BULLET = re.compile(r"^\s*(?:[-•*·▪►]|\d+[.)])\s+")
#: A field's label and value: an ASCII colon must be followed by a space (09:00 is a time).
_FIELD = re.compile(r"^(?P<label>[^:：|]{1,60}?)\s*(?::\s+|：\s*)(?P<value>\S.*)$")
#: Where fields start inside a line: after a middle dot, after a sentence end (not after an abbreviation).
_FIELD_BREAK = re.compile(
    r"\s+[·•]\s+"
    r"|(?<=[.;])(?<!\bDr\.)(?<!\bMr\.)(?<!\bMs\.)(?<!\bNo\.)(?<!\bSt\.)(?<!\bInc\.)(?<!\bLtd\.)(?<!\bCo\.)"
    r"(?<!\bMrs\.)(?<!\bProf\.)\s+(?=\S)"
    r"|(?<=[。；])"
)
#: A capitalised label that a parser joined onto the previous field's value ("... CST Attendees: Li Wei").
_JOINED_LABEL = re.compile(r"\s+(?=[A-Z][A-Za-z-]+(?: [a-z][a-z-]+){0,2}: )")
_VALUE_CUT = re.compile(r",\s|;\s?|\s[(（]|[（，；。]|\s[·—–/]\s")
_LIST_CUT = re.compile(r",\s|、|，|\sand\s|\s&\s")
_PARENTHETICAL = re.compile(r"\s*[(（][^()（）]*[)）]")
_JSON_PATH = re.compile(r"^(?P<record>[\w-]+\[\d+\])\.(?P<field>[\w.\[\]-]+)$")
_TITLE_SPLIT = re.compile(r"\s+[—–-]\s+")


def label_triples(text: str, heading_path: Sequence[str] = ()) -> list[Triple]:
    """The fields of ``text`` as triples about the heading they sit under (or the record they name)."""
    subject = heading_subject(heading_path)
    rows = {line: _value_row(line) for line in text.splitlines() if _is_row(line)}
    entity_rows = [row for row, field in rows.items() if field is None]
    # A row whose first cell is a value ("Up to 2,000 EUR | Approver: ...") is a condition, not an entity.
    found = [t for t in table_triples("\n".join(entity_rows)) if not is_literal(t.subject)] if entity_rows else []
    if subject is not None:
        found.extend(_triple(subject, label, v) for label, value in filter(None, rows.values())
                     for v in _values(label, value))
    records: dict[str, str] = {}
    pending: list[tuple[str, str, str]] = []  # record, label, value of JSON-path fields
    current = subject
    for line in text.splitlines():
        if line in rows:
            continue
        for label, value in _fields(line.strip()):
            path = _JSON_PATH.match(label)
            if path:
                if path["field"] in ("name", "title"):
                    records[path["record"]] = _first_item(value)
                else:
                    pending.append((path["record"], _humanise(path["field"]), value))
                continue
            if label.casefold() in NAMING_LABELS:
                current = _first_item(value) or current
                continue
            if current is not None:
                found.extend(_triple(current, label, v) for v in _values(label, value) if v != current)
    for record, label, value in pending:
        if record in records:
            found.extend(_triple(records[record], label, v) for v in _values(label, value) if v != records[record])
    return list(dict.fromkeys(found))


def prose(text: str) -> str:
    """``text`` without its fields and key/value rows, each line ended: what is left for the sentence
    rules, which would read "编写：赵磊（销售总监）、孙丽" as a sentence and make a relation of it."""
    kept = []
    for line in text.splitlines():
        if _is_row(line):
            continue
        pieces = [piece for piece in _FIELD_BREAK.split(line) if _field(_BULLET.sub("", piece.strip())) is None]
        line = " ".join(piece.strip() for piece in pieces).strip()
        if line:
            # A line is a unit of its own (a title, a list item): ended, so a parser does not run a
            # heading into the sentence under it ("K5 Lift — Product Data Sheet The K5 Lift is ...").
            kept.append(line if line.endswith(_ENDS) else line + ".")
    return "\n".join(kept)


_ENDS = (".", "!", "?", ":", ";", ",", "。", "！", "？", "；", "：", "，")


def _is_row(line: str) -> bool:
    return sum(bool(_FIELD.match(cell.strip())) for cell in line.split("|")) >= 2


def _triple(subject: str, label: str, value: str) -> Triple:
    return Triple(subject, label, value, object_type="VALUE" if is_literal(value) else "")


def _value_row(row: str) -> tuple[str, str] | None:
    """(parameter, value) of a row ``参数: 额定载重 | 数值: 150 kg``, None for other rows."""
    cells = [_FIELD.match(cell.strip()) for cell in row.split("|") if cell.strip()]
    if len(cells) == 2 and all(cells) and cells[1]["label"].strip().casefold() in VALUE_HEADERS:
        return cells[0]["value"].strip(), cells[1]["value"].strip()
    return None


def heading_subject(heading_path: Sequence[str]) -> str | None:
    """What the nearest heading that names something names, going up past generic ones.

    Numbering goes (``3.``, ``三、``); a title "Kind: Name" names its part after the colon
    ("Customer case study: Bluebonnet Foods"), a title "Name — kind" its part before the dash
    ("K5 Lift — Product Data Sheet"). Questions, sentences (a comma or semicolon, more than eight
    words) and bare values ("2026") are not subjects; "Q2 2026 results" is one.
    """
    for heading in reversed(heading_path):
        name = _NUMBERING.sub("", heading.strip().removeprefix("sheet: ")).strip()
        kind, colon, rest = re.split(r"(:\s+|：)", name, maxsplit=1) + [""] * (2 if not re.search(r":\s+|：", name) else 0)
        if colon:  # "Case study: Bluebonnet Foods" names Bluebonnet Foods; "Date: 29 September" is a field
            if not all(w.casefold() in GENERIC_HEADING_WORDS for w in _words(kind)):
                continue
            name = rest.strip()
        name = _TITLE_SPLIT.split(name)[0].strip()
        if not name or name.endswith(("?", "？", ".", "。")) or re.search(r"[,;，；]", name) \
                or is_literal(name) and not re.search(r"[^\W\d_]{3,}", name):  # "2026", "48": a value
            continue
        words = _words(name)
        generic = [w.casefold() in GENERIC_HEADING_WORDS for w in words]
        if len(words) > 8 or len(name) > 80 or all(generic):
            continue
        # "About Kestrel Robotics", "Nest 4.2 release notes": the generic words around the name go.
        first, last = generic.index(False), len(generic) - generic[::-1].index(False)
        core = " ".join(words[first:last]) if len(words) > 1 else name
        if core.split()[0].casefold() in _PREPOSITIONS:  # "Results after six months": no name left
            continue
        return name if is_literal(core) else core
    return None


def _fields(line: str) -> list[tuple[str, str]]:
    """The (label, value) fields of one line, in order."""
    found = []
    for piece in _FIELD_BREAK.split(line):
        parsed = _field(_BULLET.sub("", piece.strip()))
        while parsed is not None:
            label, value = parsed
            joined = _JOINED_LABEL.search(value)
            parsed = None
            if joined:
                value, rest = value[:joined.start()], value[joined.end():]
                parsed = _field(rest)
            found.append((label, value))
    return found


def _field(text: str) -> tuple[str, str] | None:
    """(label, value) when ``text`` is a field, else None."""
    m = _FIELD.match(text)
    if m is None:
        return None
    label, value = m["label"].strip(), m["value"].strip().rstrip(".。,;，；")
    if _JSON_PATH.match(label):
        return label, value
    words = _words(label)
    if not words or not any(ch.isalpha() for ch in label) or is_literal(label) or "http" in label.casefold():
        return None
    if re.search(r"\d", label) and not re.search(r"[a-z]", label) and not has_cjk(label):
        return None  # an identifier ("NEST-2290: Map editor ..."), not a field name
    if has_cjk(label):
        if len(label) > MAX_LABEL_CHARS:
            return None
    elif len(words) > MAX_LABEL_WORDS or words[0].casefold() in _PREPOSITIONS or re.search(r"[.!?\"“”]", label) \
            or any(w.casefold() in _PRONOUNS for w in words):
        return None  # a phrase ("For Kestrel Robotics GmbH:") or a sentence ("Choose the gateway closest to you:")
    if label.casefold() in DISCOURSE_LABELS or not value:
        return None
    return label, value


def _values(label: str, value: str) -> list[str]:
    """The value (or, for a plural label and a list, each item), cut to its head and bounded."""
    if is_literal(value):
        items = [value]
    elif _is_list_label(label):
        items = [_PARENTHETICAL.sub("", item).strip() for item in _LIST_CUT.split(_PARENTHETICAL.sub("", value))]
    else:
        items = [_VALUE_CUT.split(value)[0].strip()]
    return [v for v in (item.strip(" \"'“”.") for item in items) if v and _short(v)]


def _first_item(value: str) -> str:
    items = _values("", value)
    return items[0] if items else ""


def _is_list_label(label: str) -> bool:
    """"Attendees", "Regions", 参会人员, 编写: a label under which a list of names is usual."""
    if not label.split():
        return False
    word = label.split()[-1].casefold()
    return word.endswith("s") and not word.endswith("ss") and len(word) > 3 or label.endswith(("人员", "成员", "编写"))


def _short(value: str) -> bool:
    if has_cjk(value):
        return len(value) <= MAX_VALUE_CHARS
    return len(value.split()) <= MAX_VALUE_WORDS


def _words(text: str) -> list[str]:
    """Latin words, or the whole run for Chinese (which has no spaces to count)."""
    return [text] if CJK.search(text) and " " not in text.strip() else text.split()


def _humanise(path: str) -> str:
    """A JSON field path as a label: ``specs.payload_kg`` -> ``payload kg``."""
    return re.sub(r"\[\d+\]", "", path.rsplit(".", 1)[-1]).replace("_", " ")
