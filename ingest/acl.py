"""Access groups per file from every ``zhiku-acl.toml`` on the way down to it.

An ACL file is a TOML table of path glob -> list of groups, matched against the path relative to
the folder the ACL file sits in (``"hr/**" = ["hr"]``). Inside one file the last matching glob
wins, as in CODEOWNERS, so a general rule can be refined below it. Across files, every ACL file
from the filesystem root down to the file's folder is consulted, outer first, and an inner file's
match refines (replaces) an outer one's. So a file's groups depend only on where it lies, never on
which folder or file an ingest named. A file no rule matches gets the fallback groups
(``--groups``, else public). A broken ACL file anywhere above a file refuses that file: ingesting
restricted files as public would leak them.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Sequence

from zhiku.errors import AclError
from zhiku.records import PUBLIC

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
    """The rules of one ACL file (empty when the folder has none)."""

    rules: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = ()
    fallback: tuple[str, ...] = (PUBLIC,)

    @classmethod
    def load(cls, folder: Path, fallback: tuple[str, ...] = (PUBLIC,)) -> Acl:
        """The ACL file of ``folder`` alone; raises ``AclError`` when it is unreadable or malformed."""
        path = folder / ACL_FILE
        try:
            if not path.is_file():
                return cls((), fallback)
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise AclError(f"{path}: cannot read it ({exc.strerror or exc}); fix its permissions") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise AclError(f"{path}: not valid TOML ({exc}); fix it, e.g. \"hr/**\" = [\"hr\"]") from exc
        rules = []
        for glob, groups in table.items():
            if not isinstance(groups, list) or not groups or not all(isinstance(g, str) and g for g in groups):
                raise AclError(f"{path}: {glob!r} must map to a non-empty list of group names, e.g. [\"hr\"]")
            rules.append((glob_regex(glob), tuple(groups)))
        return cls(tuple(rules), fallback)

    def match(self, relative: PurePosixPath | str) -> tuple[str, ...] | None:
        """The groups of the last rule matching ``relative``, or None when no rule does."""
        text = str(relative)
        for pattern, groups in reversed(self.rules):
            if pattern.match(text):
                return groups
        return None

    def groups_for(self, relative: PurePosixPath | str) -> tuple[str, ...]:
        found = self.match(relative)
        return self.fallback if found is None else found


@dataclass(frozen=True)
class AclRefusal:
    """A file refused because an ACL file above it is broken."""

    acl_file: Path
    reason: str


@dataclass
class AclResolver:
    """Groups for absolute file paths from all ACL files above them; one per walk.

    Each folder's ACL file is read once per resolver (a walk asks about thousands of files in the
    same few folders), and a broken one is remembered as its error.
    """

    fallback: tuple[str, ...] = (PUBLIC,)
    _folders: dict[Path, Acl | AclRefusal] = field(default_factory=dict)

    def groups_for(self, path: Path) -> tuple[str, ...] | AclRefusal:
        """The groups of the absolute (resolved) ``path``, or the broken ACL file that refuses it."""
        groups = self.fallback
        for folder in reversed(path.parents):  # from the filesystem root down: inner files refine
            acl = self._acl(folder)
            if isinstance(acl, AclRefusal):
                return acl
            if acl.rules and (found := acl.match(path.relative_to(folder).as_posix())) is not None:
                groups = found
        return groups

    def _acl(self, folder: Path) -> Acl | AclRefusal:
        if folder not in self._folders:
            try:
                self._folders[folder] = Acl.load(folder)
            except AclError as exc:
                self._folders[folder] = AclRefusal(folder / ACL_FILE, str(exc))
        return self._folders[folder]


def narrowest(old: Sequence[str], new: Sequence[str]) -> tuple[str, ...]:
    """The groups that only users allowed by both ``old`` and ``new`` belong to.

    A stored version whose file changed its ACL but could not be read again keeps these until the
    new version is stored: a tightened ACL takes effect at once, a loosened one never exposes the
    old text to the newly allowed. Empty means only those who see everything (admins).
    """
    if PUBLIC in old:
        return tuple(new)
    if PUBLIC in new:
        return tuple(old)
    return tuple(g for g in old if g in set(new))

