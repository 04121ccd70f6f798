"""SHA-256 of a file, read in blocks: ingest's content hash and the supply-chain checks of shipped weights."""
from __future__ import annotations

import hashlib
from pathlib import Path


def file_hash(path: Path) -> str:
    """The hex SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
