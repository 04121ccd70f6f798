"""Triples from table chunks: each row is an entity, each other column a relation to its cell.

Three layouts are read: key–value rows (``Name: Mary Chen | Title: CTO``, one row per line),
markdown pipe tables (a header line, a ``|---|`` rule, then rows) and delimited text (CSV or TSV
with a header line). The first cell of a row names the row's entity; a row ``Atlas | Acme | 2023``
under ``Product | Owner | Launch`` gives (Atlas, Owner, Acme) and (Atlas, Launch, 2023). Text in
none of these layouts (a table flattened to words) yields nothing.
"""
from __future__ import annotations

import csv
import re

from zhiku.records import Triple

#: Cells longer than this are prose, not values: they are skipped.
MAX_CELL = 120
_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_KEY_VALUE = re.compile(r"^\s*([^:：|]{1,60}?)\s*[:：]\s*(.*?)\s*$")


def table_triples(text: str) -> list[Triple]:
    """Row entity -> column header -> cell value, for every row of the table in ``text``."""
    lines = [line for line in text.splitlines() if line.strip()]
    rows = _key_value_rows(lines) or _grid_rows(lines)
    triples = []
    for cells in rows:
        cells = [(h, v) for h, v in cells if h and v and len(v) <= MAX_CELL]
        if len(cells) < 2:
            continue
        subject = cells[0][1]
        triples.extend(Triple(subject, header, value) for header, value in cells[1:])
    return triples


def _key_value_rows(lines: list[str]) -> list[list[tuple[str, str]]]:
    """``Header: value | Header: value`` lines (every cell must have a key)."""
    rows = []
    for line in lines:
        matches = [_KEY_VALUE.match(cell) for cell in line.split("|") if cell.strip()]
        if not matches or not all(matches):
            return []
        rows.append([(m.group(1).strip(), m.group(2).strip()) for m in matches if m])
    return rows


def _grid_rows(lines: list[str]) -> list[list[tuple[str, str]]]:
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
    if len(header) < 2 or not any(len(row) == len(header) for row in body):
        return []
    return [list(zip(header, row)) for row in body if len(row) == len(header)]
