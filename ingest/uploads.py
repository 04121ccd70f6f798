"""Files that reach the server to be ingested: uploads saved into the knowledge base, server paths allow-listed.

Shared by the UI's ingest page and the API's ``/v1/ingest``. Uploads are saved under
``<knowledge base>/uploads/<sha256 prefix>/<file name>``: a document's identity is its path, and
the original-file download serves that file later. Naming the folder by content means two uploads
never overwrite each other, and an ACL file (``zhiku-acl.toml``) is refused, so an upload can never
change the groups of other uploads. Server paths are accepted only inside the ``ui_ingest_roots``
allow-list (off when empty), checked after symlinks and ``..`` are resolved.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from ingest.acl import ACL_FILE
from zhiku.errors import NotAllowedError, UsageError
from zhiku.kb import UPLOADS, atomic_write, private_folder

#: Hex digits of the content's SHA-256 that name an upload's folder.
PREFIX_LENGTH = 16


def save_upload(root: Path, name: str, content: bytes, max_mb: int) -> Path:
    """Write one upload to ``root/uploads/<sha256 prefix>/<base name>`` (the same bytes land on the same path).

    Refuses (``UsageError``) a nameless or hidden file, an ACL file and a file over ``max_mb`` MiB.
    """
    base = Path(name.replace("\\", "/")).name
    if not base or base.startswith("."):
        raise UsageError(f"upload {name!r} has no usable file name; rename it and upload again")
    if base.lower() == ACL_FILE:
        raise UsageError(f"{base} was not accepted: access groups cannot be set by uploading an ACL file; "
                         "type the groups in the field above, or ask an administrator to ingest that folder")
    if len(content) > max_mb * 1024 * 1024:
        raise UsageError(f"{base} is {len(content) / 2**20:.1f} MiB, over the upload limit of {max_mb} MiB "
                         "(setting upload_max_mb); ask an administrator to ingest it from the server")
    folder = private_folder(private_folder(root / UPLOADS) / hashlib.sha256(content).hexdigest()[:PREFIX_LENGTH])
    path = folder / base
    if not path.is_file():
        atomic_write(path, lambda tmp: tmp.write_bytes(content))
    return path


def allowed_path(path: Path, roots: Sequence[str | Path], what: str = "server folder ingest") -> Path:
    """``path`` with symlinks and ``..`` resolved, if it exists and lies inside one of ``roots``."""
    if not roots:
        raise NotAllowedError(f"{what} is off: an administrator lists the allowed folders in the setting "
                              "ui_ingest_roots (zhiku.toml)")
    resolved = path.expanduser().resolve()
    if not resolved.exists():
        raise FileNotFoundError(f"no such file or folder on the server: {path}; check the path")
    if not any(resolved.is_relative_to(Path(root).expanduser().resolve()) for root in roots):
        raise NotAllowedError(f"{path} is outside the folders allowed for {what} (setting ui_ingest_roots: "
                              f"{', '.join(map(str, roots))})")
    return resolved
