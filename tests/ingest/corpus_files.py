"""Writing small corpora for the ingest tests."""
from __future__ import annotations

from pathlib import Path


def write(folder: Path, name: str, text: str) -> Path:
    """Write ``folder/name`` (making its folders); returns the resolved path, as ingest stores it."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path.resolve()
