"""Serving a document's original file: only to a user who may see it, and only the bytes that were ingested.

The UI's download button and the API's ``/v1/documents/{id}/file`` both serve through
``verified_original``, which re-checks at the moment of serving, against the knowledge base as it
is now, that the user may see the document and that the file on disk hashes to the
``content_hash`` stored at ingest (SHA-256), so a file changed or swapped since is never served as
the one an answer cites.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from zhiku.errors import DownloadError
from zhiku.kb import KnowledgeBase
from zhiku.records import User


def verified_original(kb: KnowledgeBase, user: User, doc_id: int) -> tuple[Path, bytes]:
    """The original file of ``doc_id`` and its bytes, checked now: ``user`` may still see the document
    (as the knowledge base holds it now) and the bytes hash to the ``content_hash`` stored at ingest.

    The bytes returned are the ones hashed, so a file swapped after the check is never served.
    """
    doc = kb.get_document(doc_id)
    if doc is None or not user.can_see(doc.groups):
        raise DownloadError("this document is no longer available to you (removed, or its access groups "
                            "changed); ask an administrator if you need it")
    path = Path(doc.source)
    try:
        data = path.read_bytes()
    except OSError:
        raise DownloadError(f"{path.name} is no longer on the server; an administrator can restore it and "
                            "ingest it again") from None
    if hashlib.sha256(data).hexdigest() != doc.content_hash:
        raise DownloadError(f"{path.name} changed on disk since it was ingested, so it is not the file the "
                            "answer cites; an administrator can ingest it again to serve the new version")
    return path, data
