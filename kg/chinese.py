"""Chinese triples from jieba part-of-speech tags and clause patterns.

Entities: jieba's names (``nr`` person, ``ns`` place, ``nt`` organisation, ``nz`` other), dates
(``2015年``), and organisations jieba misses, assembled from a name or noun run and an organisation
suffix (知库 科技 有限公司, 研发 部, 上海 分公司). Every organisation found teaches the extractor's
own tokenizer its full name and its brand (华为技术有限公司 -> 华为), so later chunks recognise
"华为" alone: a dictionary learned from the corpus, held by the extractor (jieba's global
dictionary is never touched).

Relations, clause by clause (a clause without its own subject continues the last one's):
- ``X是Y的Z`` / ``X担任Y(的)Z`` -> (X, Z, Y): roles; ``Y的Z是X`` -> (X, Z, Y);
- ``X位于Y``, ``X成立于Y``, ``X负责Y``, ``X的总部设在Y`` -> (X, 位于 / 成立于 / 负责 / 总部设在, Y);
- ``X与Y签署了协议`` -> (X, 签署协议, Y); ``X向Y汇报`` -> (X, 汇报, Y); ``X在Y建立了工厂`` -> (X, 建立工厂, Y);
- ``X由Y管理`` -> (Y, 管理, X); ``X（简称Y）`` -> (X, 简称, Y), an alias.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

import jieba
import jieba.posseg

from kg.resolve import canonical_key
from zhiku.records import Triple

#: Suffixes that end an organisation's name. Generic units (部, 中心) need a noun before them.
ORG_SUFFIXES = ("股份有限公司", "有限责任公司", "有限公司", "分公司", "子公司", "公司", "集团", "银行", "大学", "学院",
                "研究院", "研究所", "委员会", "事业部", "办事处", "实验室", "中心", "部门", "部", "局", "厅", "协会", "医院")
#: Words ending in an organisation suffix that are not organisations.
NOT_ORGS = frozenset({"总部", "全部", "内部", "外部", "局部", "干部", "东部", "西部", "南部", "北部", "中部", "头部", "底部",
                      "顶部", "本部", "中心", "公司", "部门", "集团", "本公司", "该公司", "子公司", "分公司", "各部门"})
#: Verbs jieba tags as nouns or splits, taught to the extractor's tokenizer.
VERBS = ("隶属于", "位于", "设在", "坐落于", "负责", "汇报", "担任", "出任", "兼任", "领导", "创立", "创办", "收购",
         "成立", "加入", "离开", "合作", "管理", "主管")
ROLE_VERBS = frozenset({"担任", "出任", "兼任", "任"})
COPULAS = frozenset({"是", "为"})
PARTNER_PREPS = frozenset({"与", "和", "同", "跟"})
TARGET_PREPS = frozenset({"向", "对", "给", "为"})
PLACE_PREPS = frozenset({"在", "于"})
_TYPES = {"nr": "PERSON", "nrfg": "PERSON", "ns": "GPE", "nt": "ORG", "nz": "MISC", "nrt": "MISC"}
_NAME_FLAGS = frozenset({"nr", "nrfg", "nrt", "ns", "nt", "nz", "eng"})
_NOUN_FLAGS = _NAME_FLAGS | {"n", "j", "nl", "ng", "vn", "an"}
_ASPECT = frozenset({"了", "着", "过"})
_AND = frozenset({"和", "与", "及", "以及", "、"})
_SENTENCE_END = re.compile(r"[。！？!?；;\n]+")
_CLAUSE_BREAK = frozenset({"，", ",", "：", ":"})
_DATE = re.compile(r"^\d{2,4}年(\d{1,2}月(\d{1,2}日)?)?$|^\d{1,2}月(\d{1,2}日)?$")
_MAX_CONCEPT = 12

log = logging.getLogger(__name__)


@dataclass
class Unit:
    """A token or merged entity: ``type`` is set for entities, ``flag`` is the jieba tag."""

    text: str
    flag: str
    type: str = ""

    @property
    def entity(self) -> bool:
        return bool(self.type)


class ChineseRules:
    """Extract triples from Chinese text with a private jieba tokenizer that learns organisation names."""

    def __init__(self) -> None:
        jieba.setLogLevel(logging.WARNING)
        self._tokenizer = jieba.posseg.POSTokenizer(jieba.Tokenizer())
        for verb in VERBS:
            self._tokenizer.tokenizer.add_word(verb, 2000, "v")
        self._known: set[str] = set()

    def triples(self, text: str) -> list[Triple]:
        found: list[Triple] = []
        for sentence in _SENTENCE_END.split(text):
            if sentence.strip():
                found.extend(self._sentence(sentence.strip()))
        return list(dict.fromkeys(found))

    # ------------------------------------------------------------------ units
    def units(self, sentence: str) -> list[Unit]:
        """Tokens with dates, places and organisations merged into entity units."""
        tokens = [Unit(w.word, w.flag) for w in self._tokenizer.cut(sentence) if w.word.strip()]
        units: list[Unit] = []
        for tok in tokens:
            prev = units[-1] if units else None
            if prev is not None and _DATE.match(prev.text + tok.text) and tok.flag in ("m", "t"):
                units[-1] = Unit(prev.text + tok.text, "t", "DATE")
            elif _DATE.match(tok.text):
                units.append(Unit(tok.text, "t", "DATE"))
            elif tok.text.endswith(ORG_SUFFIXES) and tok.text not in NOT_ORGS or tok.text in ORG_SUFFIXES:
                units.append(self._organisation(units, tok))
            elif tok.flag == "ns" and prev is not None and prev.type == "GPE":
                units[-1] = Unit(prev.text + tok.text, "ns", "GPE")
            elif tok.flag == "eng":
                units.append(Unit(tok.text, "eng", "ORG" if tok.text.isupper() and len(tok.text) > 1 else "MISC"))
            else:
                units.append(Unit(tok.text, tok.flag, _TYPES.get(tok.flag, "")))
        return units

    def _organisation(self, units: list[Unit], suffix: Unit) -> Unit:
        """Merge ``suffix`` with the name or noun run before it into an organisation, if it is one."""
        start = len(units)
        while start > 0 and len(units) - start < 4 and units[start - 1].flag in _NOUN_FLAGS \
                and units[start - 1].type not in ("PERSON", "DATE"):
            start -= 1
        run = units[start:]
        before = units[start - 1] if start > 0 else None
        descriptive = before is not None and (before.text == "的" or before.flag in ("m", "q", "r"))
        generic = suffix.text in ORG_SUFFIXES or suffix.text in NOT_ORGS
        if generic and (not run or descriptive and not any(u.flag in _NAME_FLAGS for u in run)):
            return Unit(suffix.text, suffix.flag)
        name = "".join(u.text for u in run) + suffix.text
        del units[start:]
        self._learn(name)
        return Unit(name, "nt", "ORG")

    def _learn(self, name: str) -> None:
        """Teach the tokenizer an organisation's full name and its brand."""
        for word in {name, canonical_key(name)}:
            if len(word) >= 2 and word not in self._known and not word.isascii():
                self._known.add(word)
                self._tokenizer.tokenizer.add_word(word, 5000, "nt")

    # -------------------------------------------------------------- sentences
    def _sentence(self, sentence: str) -> Iterator[Triple]:
        units = self.units(sentence)
        units, aliases = _take_aliases(units)
        for name, alias in aliases:
            self._learn(alias)
            yield Triple(name.text, "简称", alias, subject_type=name.type, object_type=name.type)
        clauses: list[list[Unit]] = [[]]
        for u in units:
            if u.text in _CLAUSE_BREAK:
                clauses.append([])
            elif u.flag != "x":
                clauses[-1].append(u)
        carry: Unit | None = None
        last_org: Unit | None = None
        for clause in clauses:
            subject, triples = _clause(clause, carry, last_org)
            yield from triples
            carry = subject or carry
            last_org = next((u for u in reversed(clause) if u.type == "ORG"), last_org)


def _take_aliases(units: list[Unit]) -> tuple[list[Unit], list[tuple[Unit, str]]]:
    """Remove ``（简称Y）`` after an entity and return the (entity, alias) pairs it defined."""
    out: list[Unit] = []
    aliases: list[tuple[Unit, str]] = []
    i = 0
    while i < len(units):
        u = units[i]
        if u.text in ("（", "(") and out and out[-1].entity:
            close = next((j for j in range(i + 1, min(len(units), i + 8)) if units[j].text in ("）", ")")), None)
            inner = units[i + 1:close] if close else []
            words = [w.text for w in inner if w.text not in ("以下", "简称", "“", "”", "\"", "'")]
            if close and any(w.text == "简称" for w in inner) and words:
                aliases.append((out[-1], "".join(words)))
                i = close + 1
                continue
        out.append(u)
        i += 1
    return out, aliases


def _clause(units: list[Unit], carry: Unit | None, last_org: Unit | None) -> tuple[Unit | None, list[Triple]]:
    """The clause's own subject (or None) and the triples it states."""
    verb_at = _first_verb(units)
    if verb_at is None:
        return _first_entity(units), []
    before, verb, after = units[:verb_at], units[verb_at], units[verb_at + 1:]
    while after and after[0].text in _ASPECT:
        after = after[1:]
    subject, preps, prefix, coordinated = _before_verb(before)
    own = subject
    subject = subject or carry
    if subject is None:
        return None, []
    subjects = [subject, *coordinated]
    obj, obj_np, obj_prep = _after_verb(after)
    triples: list[tuple[Unit, str, Unit]] = []
    v = verb.text
    if "由" in preps and obj is None:
        agent = preps["由"]
        triples += [(agent, v, s) for s in subjects]
    elif v in COPULAS:
        if obj is not None and obj_np:
            triples += [(s, obj_np, obj) for s in subjects]
        elif obj is not None and prefix:
            triples.append((obj, prefix, subject))  # 财务部负责人是孙悦 -> (孙悦, 负责人, 财务部)
        elif obj is not None:
            triples += [(s, v, obj) for s in subjects]
    elif v in ROLE_VERBS:
        org = obj or last_org
        if org is not None and obj_np:
            triples += [(s, obj_np, org) for s in subjects]
        elif obj_np:
            triples += [(s, v, Unit(obj_np, "n")) for s in subjects]
    else:
        relation = prefix + v
        other = preps.get("partner") or preps.get("target") or preps.get("place")
        if obj is not None:
            triples += [(s, relation + obj_prep, obj) for s in subjects]
        elif other is not None:
            triples += [(s, relation + obj_np, other) for s in subjects]
        elif obj_np and len(obj_np) <= _MAX_CONCEPT:
            triples += [(s, relation, Unit(obj_np, "n")) for s in subjects]
    found = [Triple(s.text, r, o.text, subject_type=s.type, object_type=o.type)
             for s, r, o in triples if s.text != o.text]
    return own, found


def _first_verb(units: list[Unit]) -> int | None:
    verbs = [i for i, u in enumerate(units) if u.flag.startswith("v") and u.flag != "vn" and not u.entity]
    if not verbs:
        verbs = [i for i, u in enumerate(units) if u.flag == "vn" and i > 0]
    return verbs[0] if verbs else None


def _first_entity(units: list[Unit]) -> Unit | None:
    return next((u for u in units if u.entity and u.type != "DATE"), None)


def _before_verb(units: list[Unit]) -> tuple[Unit | None, dict[str, Unit], str, list[Unit]]:
    """Subject, prepositional phrases (by role), the relation prefix (总部) and coordinated subjects."""
    subject: Unit | None = None
    coordinated: list[Unit] = []
    preps: dict[str, Unit] = {}
    prefix: list[str] = []
    i = 0
    while i < len(units):
        u = units[i]
        if u.flag == "p" and i + 1 < len(units):
            target = units[i + 1]
            if target.entity and target.type != "DATE":
                role = "partner" if u.text in PARTNER_PREPS else "target" if u.text in TARGET_PREPS \
                    else "place" if u.text in PLACE_PREPS else u.text
                preps[role] = target
                i += 2
                continue
            i += 1
            while i < len(units) and not units[i].entity and units[i].flag in _NOUN_FLAGS | {"m", "t", "q"}:
                i += 1  # a prepositional phrase without an entity (于2020年, 在5G领域): dropped
            continue
        if u.entity and u.type != "DATE" and (subject is None or units[i - 1].flag == "c"):
            if subject is None:
                subject = u
            else:
                coordinated.append(u)
        elif subject is not None and u.flag in _NOUN_FLAGS:
            prefix.append(u.text)  # 京东集团的总部设在北京, 财务部负责人是孙悦
        elif subject is None and u.flag in _NOUN_FLAGS:
            prefix.append(u.text)  # 总部位于北京, after a subject given in an earlier clause
        i += 1
    return subject, preps, "".join(prefix), coordinated


def _after_verb(units: list[Unit]) -> tuple[Unit | None, str, str]:
    """The object entity (after an optional 于/在 that joins the relation) and the noun phrase after it."""
    prep = ""
    if units and units[0].flag == "p" and units[0].text in ("于", "在", "到", "自", "至"):
        prep, units = units[0].text, units[1:]
    obj: Unit | None = None
    if units and units[0].entity:
        obj, units = units[0], units[1:]
        if units and units[0].text == "的":
            units = units[1:]
    phrase: list[str] = []
    for u in units:
        if u.text == "的":
            phrase = []  # keep the head after the last modifier: 新的电池工厂 -> 电池工厂
            continue
        if u.flag in _NOUN_FLAGS | {"b", "v"} or u.text in _AND and phrase:
            phrase.append(u.text)
        elif phrase:
            break
    while phrase and phrase[-1] in _AND:
        phrase.pop()
    return obj, "".join(phrase), prep
