"""Triples from table chunks: each row is an entity, each other column a relation to its cell.

Three layouts are read: key–value rows (``Name: Mary Chen | Title: CTO``, one row per line, as
ingest writes table rows; or one ``key: value`` per line, as ingest flattens JSON records),
markdown pipe tables (a header line, a ``|---|`` rule, then rows) and delimited text (CSV or TSV
with a header line). The first cell of a row names the row's entity; a row ``Atlas | Acme | 2023``
under ``Product | Owner | Launch`` gives (Atlas, Owner, Acme) and (Atlas, Launch, 2023). Text in
none of these layouts (a table flattened to words) yields nothing.
"""
from __future__ import annotations

import csv
import re
from collections import Counter

from kg.resolve import is_literal
from zhiku.records import Triple

#: Cells longer than this are prose, not values: they are skipped.
MAX_CELL = 120
_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_KEY_VALUE = re.compile(r"^\s*([^:：|]{1,60}?)\s*[:：]\s*(.*?)\s*$")


def table_triples(text: str) -> list[Triple]:
    """Row entity -> column header -> cell value, for every row of the table in ``text``.

    A first cell that is a value (a row number) does not name the row: its first name does. When
    several rows share their first cell (one office, a row per department), a value of such a
    row is qualified by the row's other names: (Munich, "Headcount 31 Dec 2025 (G&A)", 48), not
    three unqualified headcounts of Munich.
    """
    lines = [line for line in text.splitlines() if line.strip()]
    rows = _key_value_rows(lines) or _grid_rows(lines)
    shared = Counter(subject.strip() for subject, _ in rows)
    triples = []
    for subject, cells in rows:
        subject = subject.strip()
        if is_literal(subject):  # a row number ("1 | Move all certificates ... | Jan Richter"): the row is its first name
            named = next(((h, v) for h, v in cells if v and not is_literal(v)), None)
            if named is None:
                continue
            subject, cells = named[1].strip(), [c for c in cells if c is not named]
        if not subject or len(subject) > MAX_CELL:
            continue
        cells = [(h, v) for h, v in cells if h and v and len(v) <= MAX_CELL and v != subject]
        names = [v for _, v in cells if not is_literal(v)]
        for header, value in cells:
            if shared[subject] > 1 and names and is_literal(value):
                header = f"{header} ({', '.join(names)})"
            triples.append(Triple(subject, header, value))
    return triples


Row = tuple[str, list[tuple[str, str]]]  # the row's entity, then (header, value) cells


def _key_value_rows(lines: list[str]) -> list[Row]:
    """``Header: value | Header: value`` rows; a first cell without a header names the row.

    Lines with one ``key: value`` each (a JSON record flattened by ingest) form one record per run,
    a new record starting when the first key comes back. Lines with no ``key: value`` at all (a
    caption) are skipped.
    """
    parsed = []
    for line in lines:
        cells = [cell.strip() for cell in line.split("|") if cell.strip()]
        pairs = [_KEY_VALUE.match(cell) for cell in cells]
        if any(pairs):
            parsed.append([(m.group(1).strip(), m.group(2).strip()) if m else ("", cell) for m, cell in zip(pairs, cells)])
    if not parsed:
        return []
    if all(len(cells) == 1 for cells in parsed) and len(parsed) > 1:
        return _records([cells[0] for cells in parsed])
    rows = []
    for cells in parsed:
        (_, first), rest = cells[0], cells[1:]
        rows.append((first, [c for c in rest if c[0]]))
    return rows


def _records(pairs: list[tuple[str, str]]) -> list[Row]:
    records: list[list[tuple[str, str]]] = []
    for pair in pairs:
        if not records or pair[0] == pairs[0][0]:
            records.append([])
        records[-1].append(pair)
    return [(r[0][1], r[1:]) for r in records]


def _grid_rows(lines: list[str]) -> list[Row]:
    """A header line then rows: markdown pipes, tabs or commas, whichever the header uses."""
    if len(lines) < 2:
        return []
    if "|" in lines[0]:
        grid = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines if not _RULE.match(line)]
    else:
        delimiter = "\t" if "\t" in lines[0] else "," if "," in lines[0] else None
        if delimiter is None:
            return []
        grid = [[c.strip() for c in row] for row in csv.reader(lines, delimiter=delimiter)]
    header, body = grid[0], grid[1:]
    if len(header) < 2:
        return []
    return [(row[0], list(zip(header[1:], row[1:]))) for row in body if len(row) == len(header)]
