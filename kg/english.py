"""English triples from spaCy parses: named entities joined by dependency patterns.

Patterns, each on one sentence:
- subject–verb–object: ``Acme acquired Initech`` -> (Acme, acquired, Initech); passives with an agent
  are turned around (``Initech was acquired by Acme`` gives the same triple);
- prepositional attachments to the verb: ``Acme is headquartered in Berlin`` -> (Acme, headquartered
  in, Berlin); a plain direct object joins the relation when it leads to a name (``signed an
  agreement with Globex`` -> (Acme, signed agreement with, Globex)) and stays the object when only a
  date or amount follows (``replaces the legacy billing system by Q3`` -> (Acme, replaces, legacy
  billing system) and (Acme, replaces by, Q3), an attribute downstream);
- roles, from appositions (``Mary Chen, the CTO of Acme``), copulas (``Mary Chen is the CTO of
  Acme``), possessives (``Acme's CTO``) and ``as``/``to`` complements (``joined Acme as head of
  sales``) -> (Mary Chen, CTO of, Acme);
- aliases defined in parentheses: ``Acme Robotics (AR)`` -> (Acme Robotics, also known as, AR).

Subjects must be named (an entity, a proper noun or a pronoun resolved to the last person or
organisation named in the chunk); objects may also be organisation units ("the audit committee")
or, when nothing named follows the verb, a plain noun phrase. A name never spans a line break (the
NER runs a heading into the sentence under it).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from spacy.tokens import Doc, Span, Token

from zhiku.records import Triple

#: spaCy labels that name things (graph nodes), and value labels accepted only as objects.
NAME_LABELS = frozenset({"PERSON", "ORG", "GPE", "LOC", "PRODUCT", "FAC", "EVENT", "WORK_OF_ART", "LAW", "NORP"})
VALUE_LABELS = frozenset({"DATE", "MONEY"})
#: spaCy labels of literal values (when, how much, how many): never what a relation leads to.
LITERAL_LABELS = VALUE_LABELS | {"TIME", "PERCENT", "QUANTITY", "CARDINAL", "ORDINAL"}
#: Words that make a name an organisation whatever the NER said ("Zenith Labs" is not a person).
ORG_HEADS = frozenset("""inc inc. ltd ltd. corp corp. corporation co co. llc gmbh plc ag group holdings bank
university systems industries enterprises trading technologies labs logistics solutions partners capital
robotics software motors pharmaceuticals foundation institute association agency ventures networks
electronics dynamics consulting services""".split())
#: Nouns for parts of an organisation: an object phrase headed by one is an organisation unit.
ORG_UNITS = frozenset("department team committee board division office unit council subsidiary".split())
#: Job titles: never entities themselves (the NER tags "CTO" as an organisation), but role relations.
ROLE_WORDS = frozenset("""ceo cto cfo coo cio cmo cso president vice chairman chairwoman chair director
manager head founder cofounder co-founder engineer officer lead partner member secretary treasurer executive
vp svp evp analyst consultant owner counsel architect scientist designer chief principal""".split())
_PERSON_PRONOUNS = frozenset({"he", "she", "him", "her"})
_ORG_PRONOUNS = frozenset({"it", "they"})
_ORG_ANAPHORS = frozenset({"company", "firm", "organisation", "organization", "group", "business"})
_ACRONYM_DEF = re.compile(r"^\s*\(\s*([A-Z][A-Za-z0-9&]{1,7})\s*\)")
_ROLE_PREPS = frozenset({"of", "at", "for", "in", "with"})
_SKIP_DEPS = frozenset({"det", "poss", "case", "punct", "nummod", "predet", "prep", "cc", "conj", "appos", "relcl",
                        "acl", "advmod", "quantmod", "nmod"})


@dataclass(frozen=True)
class Mention:
    text: str
    type: str
    named: bool  # an entity or proper noun, not a plain noun phrase


class EnglishRules:
    """Extract triples from one parsed chunk (a spaCy ``Doc``)."""

    def triples(self, doc: Doc) -> list[Triple]:
        ents = {t.i: ent for ent in doc.ents for t in ent}
        context = _Context(doc, ents)
        found: list[Triple] = []
        for sent in doc.sents:
            found.extend(context.sentence(sent))
        return list(dict.fromkeys(found))


class _Context:
    """Per-chunk state: entity spans and the last person/organisation named (for pronouns)."""

    def __init__(self, doc: Doc, ents: dict[int, Span]) -> None:
        self.doc = doc
        self.ents = ents
        self.last: dict[str, Mention] = {}

    # -------------------------------------------------------------- mentions
    def mention(self, token: Token, allow_concept: bool = False) -> Mention | None:
        """What ``token`` names: an entity, a proper noun phrase, or (if allowed) a noun phrase."""
        ent = self.ents.get(token.i)
        if ent is not None and ent.label_ in NAME_LABELS | VALUE_LABELS and not _is_role(ent):
            text = _strip_article(_line_of(_widen(ent), token))
            if ent.label_ in VALUE_LABELS:
                return Mention(text, ent.label_, named=True) if allow_concept or ent.label_ == "DATE" else None
            return self._remember(Mention(text, _fix_type(text, ent.label_), named=True))
        if token.pos_ == "PRON":
            return self._antecedent({"PERSON"} if token.lower_ in _PERSON_PRONOUNS else {"ORG"}) \
                if token.lower_ in _PERSON_PRONOUNS | _ORG_PRONOUNS else None
        if token.pos_ not in ("PROPN", "NOUN") or token.lower_ in ROLE_WORDS:
            return None
        words = _phrase(token)
        words = [w for w in words if _same_line(w, token)]
        text = " ".join(t.text for t in words)
        if any(t.pos_ == "PROPN" for t in words) and token.pos_ == "PROPN":
            return self._remember(Mention(text, _fix_type(text, ""), named=True))
        if token.lower_ in _ORG_ANAPHORS and any(c.lower_ in ("the", "our", "this") for c in token.children):
            return self._antecedent({"ORG"})
        if any(t.pos_ == "PROPN" for t in words):  # "the Atlas robot": named by its proper-noun modifier
            return Mention(text, "", named=True)
        if token.lemma_.lower() in ORG_UNITS and len(words) > 1:  # "the audit committee", not "an office"
            return Mention(text, "ORG", named=True)
        return Mention(text, "", named=False) if allow_concept else None

    def _remember(self, m: Mention) -> Mention:
        if m.type in ("PERSON", "ORG"):
            self.last[m.type] = m
        return m

    def _antecedent(self, types: set[str]) -> Mention | None:
        return next((self.last[t] for t in types if t in self.last), None)

    # ------------------------------------------------------------- sentences
    def sentence(self, sent: Span) -> Iterator[Triple]:
        yield from self._aliases(sent)
        for token in sent:
            if token.dep_ == "appos":
                yield from self._apposition(token)
            if (token.pos_ in ("VERB", "AUX") or _misread_verb(token)) and token.lower_ not in ROLE_WORDS \
                    and not any(c.dep_ == "neg" for c in token.children):
                yield from self._clause(token)

    def _aliases(self, sent: Span) -> Iterator[Triple]:
        for ent in sent.ents:
            if ent.label_ in NAME_LABELS:
                m = _ACRONYM_DEF.match(self.doc.text[ent.end_char:ent.end_char + 12])
                if m and m.group(1) != ent.text and short_form_of(m.group(1), ent.text):
                    yield Triple(_strip_article(ent), "also known as", m.group(1), subject_type=_fix_type(ent.text, ent.label_),
                                 object_type=_fix_type(ent.text, ent.label_))

    def _apposition(self, appos: Token) -> Iterator[Triple]:
        subject = self.mention(appos.head)
        if subject is None or not subject.named or self.ents.get(appos.i) is not None:
            return
        yield from self._roles(subject, appos)

    def _roles(self, subject: Mention, role: Token, via: Token | None = None) -> Iterator[Triple]:
        """(subject, "<role> of", organisation) for a role noun and the organisation it belongs to."""
        title = " ".join(t.text for t in _phrase(role))
        for prep in role.children:  # "head of marketing": the field is part of the title
            fields = [o for o in _objects(prep) if prep.lower_ == "of" and self.ents.get(o.i) is None
                      and o.pos_ == "NOUN" and o.lemma_.lower() not in ORG_UNITS]
            if fields:
                title = f"{title} of {' '.join(t.text for t in _phrase(fields[0]))}"
        for child in role.children:
            if child.dep_ == "poss":
                org = self.mention(child)
                if org is not None and org.named:
                    yield _triple(subject, f"{title} of", org)
        yield from self._role_preps(subject, role, title)
        if via is not None:  # the organisation attached to the verb: "promoted to head ... at Acme"
            for prep in via.children:
                if prep.dep_ == "prep" and prep.lower_ in ("at", "for", "with"):
                    for obj in _objects(prep):
                        org = self.mention(obj)
                        if org is not None and org.named:
                            yield _triple(subject, f"{title} {prep.lower_}", org)

    def _role_preps(self, subject: Mention, role: Token, title: str, depth: int = 0) -> Iterator[Triple]:
        for prep in role.children:
            if prep.dep_ != "prep" or prep.lower_ not in _ROLE_PREPS:
                continue
            for obj in _objects(prep):
                target = self.mention(obj, allow_concept=True)
                if target is None:
                    continue
                if target.named:
                    yield _triple(subject, f"{title} {prep.lower_}", target)
                elif depth < 2:  # "head of sales at Acme": the field joins the title
                    yield from self._role_preps(subject, obj, f"{title} {prep.lower_} {target.text}", depth + 1)

    def _clause(self, verb: Token) -> Iterator[Triple]:
        subjects, passive = self._subjects(verb)
        direct = [o for c in verb.children if c.dep_ in ("dobj", "dative") and c.pos_ != "ADP" for o in _conjuncts(c)]
        objects = [(o, self.mention(o, allow_concept=True)) for o in direct]
        roles = [o for c in verb.children if c.dep_ in ("attr", "xcomp", "oprd", "acomp", "prep")
                 for o in (_conjuncts(c) if c.dep_ != "prep" else _objects(c) if c.lower_ in ("as", "to") else [])
                 if o.lemma_.lower() in ROLE_WORDS or c.dep_ == "attr" and o.pos_ in ("NOUN", "PROPN")]
        for role in roles:
            holders = [m for _, m in objects if m is not None and m.named and m.type == "PERSON"] or subjects
            for holder in holders:
                yield from self._roles(holder, role, via=verb)
        if not subjects:
            return
        agents = [m for p in verb.children if p.dep_ == "agent" for o in _objects(p)
                  if (m := self.mention(o)) is not None and m.named]
        relation = _verb_text(verb)
        if passive and agents:
            for agent in agents:
                for s in subjects:
                    yield _triple(agent, relation, s)
        if any(c.dep_ == "attr" for c in verb.children) and verb.lemma_ == "be":
            for attr in (c for c in verb.children if c.dep_ == "attr"):
                target = self.mention(attr)
                if target is not None and target.named and attr not in roles:
                    for s in subjects:
                        yield _triple(s, "is", target)
            return
        for acomp in (c for c in verb.children if c.dep_ == "acomp"):  # "is responsible for X"
            for prep in (p for p in acomp.children if p.dep_ == "prep"):
                for obj in _objects(prep):
                    target = self.mention(obj, allow_concept=True)
                    if target is not None:
                        for s in subjects:
                            yield _triple(s, f"{acomp.lower_} {prep.lower_}", target)
        concept_heads = []
        for token, target in objects:
            if target is None:
                continue
            if target.named:
                for s in subjects:
                    yield _triple(s, relation, target)
                yield from self._object_preps(subjects, f"{relation} {token.text}", token)
            else:
                concept_heads.append(token)
        attached, carried = self._verb_preps(subjects, verb, relation, concept_heads)
        yield from attached
        for token in concept_heads:
            via_object = list(self._object_preps(subjects, f"{relation} {token.text}", token))
            yield from via_object
            # The plain object is the fact unless it only carries the relation to a named target
            # ("signed an agreement with X", "supplies batteries to X"): "replaces the legacy
            # billing system by Q3" keeps (X, replaces, legacy billing system).
            if not via_object and not carried and token.pos_ == "NOUN":
                target = self.mention(token, allow_concept=True)
                if target is not None:
                    for s in subjects:
                        yield _triple(s, relation, target)

    def _subjects(self, verb: Token) -> tuple[list[Mention], bool]:
        """Named subjects of ``verb`` (inherited from the verb it is coordinated with) and passivity."""
        if _misread_verb(verb):
            named = [c for c in verb.children if c.dep_ == "compound" and self.ents.get(c.i) is not None]
            subject = self.mention(named[-1]) if named else None
            return ([subject] if subject is not None else []), False
        head = verb
        while True:
            subs = [t for c in head.children if c.dep_ in ("nsubj", "nsubjpass") for t in _conjuncts(c)]
            if subs or head.dep_ not in ("conj", "xcomp", "advcl") or head.head is head:
                break
            head = head.head
        passive = any(c.dep_ == "nsubjpass" for c in head.children)
        mentions = [m for t in subs if (m := self.mention(t)) is not None and m.named]
        return mentions, passive

    def _verb_preps(self, subjects: list[Mention], verb: Token, relation: str,
                    concept_heads: list[Token]) -> tuple[list[Triple], bool]:
        """Prepositions on the verb: "headquartered in X", "supplies batteries to X", "replaces ... by Q3".

        A plain object joins the relation only towards a named target ("supplies batteries to X");
        a date or amount is when or how much, not what the object leads to ("replaces by", Q3).
        Returns the triples and whether the plain object was carried into a relation.
        """
        middle = f" {concept_heads[0].text}" if concept_heads else ""
        found: list[Triple] = []
        carried = False
        for prep in verb.children:
            if prep.dep_ not in ("prep", "dative") or prep.lower_ == "as":  # "as" introduces a role
                continue
            for obj in _objects(prep):
                target = self.mention(obj, allow_concept=True)
                if target is None or not (target.named or target.type == "ORG"):
                    continue
                value = target.type in VALUE_LABELS or _is_value(obj)
                carried = carried or bool(middle) and not value
                found.extend(_triple(s, f"{relation}{'' if value else middle} {prep.lower_}", target) for s in subjects)
        return found, carried

    def _object_preps(self, subjects: list[Mention], relation: str, obj: Token) -> Iterator[Triple]:
        """Prepositions on a non-person object: "signed an agreement with X", "opened an office in X"."""
        for prep in obj.children:
            if prep.dep_ != "prep":
                continue
            for pobj in _objects(prep):
                target = self.mention(pobj)
                if target is not None and target.named:
                    for s in subjects:
                        yield _triple(s, f"{relation} {prep.lower_}", target)


def _is_value(token: Token) -> bool:
    return token.ent_type_ in LITERAL_LABELS or token.like_num


def _misread_verb(token: Token) -> bool:
    """The small model often reads "Acme partners with X" as a noun phrase headed by "partners":
    a sentence root tagged as a plural noun, after a named compound and with a preposition, is a verb."""
    return (token.dep_ == "ROOT" and token.tag_ == "NNS"
            and any(c.dep_ == "compound" and c.ent_type_ for c in token.children)
            and any(c.dep_ == "prep" for c in token.children))


def _objects(prep: Token) -> list[Token]:
    return [o for c in prep.children if c.dep_ == "pobj" for o in _conjuncts(c)]


def _conjuncts(token: Token) -> list[Token]:
    return [token, *(c for c in token.conjuncts if c.i > token.i)]


def _phrase(token: Token) -> list[Token]:
    """The token with its compound and adjective modifiers, without determiners or possessives."""
    left = [c for c in token.lefts if c.dep_ in ("compound", "amod", "flat") and c.pos_ != "PRON"]
    words: list[Token] = []
    for c in left:
        words.extend(w for w in c.subtree if w.dep_ not in _SKIP_DEPS or w is c)
    return sorted({w.i: w for w in [*words, token]}.values(), key=lambda w: w.i)


def _verb_text(verb: Token) -> str:
    particles = [c.text for c in verb.children if c.dep_ == "prt"]
    return " ".join([verb.lower_, *particles])


def _widen(ent: Span) -> Span:
    """The entity with proper nouns compounded into it that the NER left out ("Prime" of "Prime Estates")."""
    start = ent.start
    while start > ent.sent.start and ent.doc[start - 1].pos_ == "PROPN" and ent.doc[start - 1].dep_ == "compound" \
            and ent.start <= ent.doc[start - 1].head.i < ent.end and not ent.doc[start - 1].ent_type_:
        start -= 1
    return ent.doc[start:ent.end]


def short_form_of(alias: str, name: str) -> bool:
    """Whether a parenthesised ``alias`` can abbreviate ``name``: "Acme Robotics (AR)" defines an
    alias, "Kestrel Robotics GmbH (Munich)" or "Tomasz Nowak (CISO)" do not. An acronym's letters
    must follow the name's letters in order from its first initial; a word must be one of the name's.
    """
    words = [w.lower() for w in re.findall(r"[A-Za-z0-9&]+", name)]
    if not words:
        return False
    if alias.lower() in words:
        return True
    letters, source = alias.lower(), "".join(words)
    if not alias[:1].isupper() or letters[0] != source[0]:
        return False
    position = 0
    for letter in letters:
        position = source.find(letter, position) + 1
        if position == 0:
            return False
    return True


def _line_of(span: Span, token: Token) -> Span:
    """The part of ``span`` on ``token``'s line: the NER runs a heading into the sentence under it
    ("Kestrel Robotics\nKestrel Robotics was founded ..."), but a name never spans a line break."""
    start, end = span.start, span.end
    for t in span:
        if "\n" in t.text or "\n" in t.whitespace_:
            if t.i < token.i:
                start = t.i + 1
            elif t.i >= token.i:
                end = t.i + (0 if "\n" in t.text else 1)
                break
    return span.doc[start:end] if start < end else span


def _same_line(a: Token, b: Token) -> bool:
    low, high = sorted((a.i, b.i))
    return "\n" not in a.doc[low:high + 1].text


def _strip_article(span: Span) -> str:
    words = list(span)
    while words and words[0].dep_ in ("det", "poss") or words and words[0].lower_ in ("the", "dr.", "mr.", "ms.", "mrs."):
        words = words[1:]
    while words and words[-1].dep_ == "case":
        words = words[:-1]
    return "".join(w.text_with_ws for w in words).strip() or span.text


def _is_role(ent: Span) -> bool:
    return all(t.lower_ in ROLE_WORDS or t.is_punct for t in ent)


def _fix_type(text: str, label: str) -> str:
    last = text.lower().split()[-1] if text.split() else ""
    return "ORG" if last in ORG_HEADS else label


def _triple(subject: Mention, relation: str, obj: Mention) -> Triple:
    return Triple(subject.text, relation, obj.text, subject_type=subject.type, object_type=obj.type)
