"""Access groups per file from ``zhiku-acl.toml`` at the root of an ingested folder.

The file is a TOML table of path glob -> list of groups, matched against the path relative to the
folder (``"hr/**" = ["hr"]``). The last matching glob wins, as in CODEOWNERS, so a general rule
can be refined below it. A file no glob matches gets the fallback groups (``--groups``, else public).
A broken ACL file refuses its whole folder: ingesting restricted files as public would leak them.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

from zhiku.records import PUBLIC
from zhiku.errors import AclError

ACL_FILE = "zhiku-acl.toml"



@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """A path glob as a regex: ``**`` spans folders, ``*`` and ``?`` stay inside one.

    Cached: include/exclude filters match every file of a walk against the same few globs.
    """
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True)
class Acl:
    rules: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = ()
    fallback: tuple[str, ...] = (PUBLIC,)

    @classmethod
    def load(cls, root: Path, fallback: tuple[str, ...] = (PUBLIC,)) -> Acl:
        path = root / ACL_FILE
        if not path.is_file():
            return cls((), fallback)
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise AclError(f"{path}: not valid TOML ({exc}); fix it, e.g. \"hr/**\" = [\"hr\"]") from exc
        rules = []
        for glob, groups in table.items():
            if not isinstance(groups, list) or not groups or not all(isinstance(g, str) and g for g in groups):
                raise AclError(f"{path}: {glob!r} must map to a non-empty list of group names, e.g. [\"hr\"]")
            rules.append((glob_regex(glob), tuple(groups)))
        return cls(tuple(rules), fallback)

    def groups_for(self, relative: PurePosixPath | str) -> tuple[str, ...]:
        text = str(relative)
        for pattern, groups in reversed(self.rules):
            if pattern.match(text):
                return groups
        return self.fallback
