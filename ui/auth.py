"""User accounts for the UI: salted scrypt password hashes and access groups in the ``users`` table.

Access control only matters once someone configures users: a knowledge base without any user rows
is used by one local user who sees everything (``LOCAL_USER``). Password checks run in constant time,
and an unknown name costs the same work as a wrong password, so timing tells nothing about who exists.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass

from zhiku.kb import KnowledgeBase
from zhiku.records import User
from zhiku.errors import AccountError

#: scrypt cost (n, r, p): about 16 MiB and 50 ms per check, a fair price for an interactive sign-in.
_N, _R, _P = 2**14, 8, 1
_NAME = re.compile(r"^[\w.@-]{1,64}$")
_GROUP = re.compile(r"^[\w.@*-]{1,64}$")



@dataclass(frozen=True)
class Account:
    """A configured user as stored: who they are (``user``) and when the account was made."""

    user: User
    created_at: float


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$digest`` (hex): self-describing, so the cost can rise without breaking old rows."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; a malformed stored hash never matches."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = bytes.fromhex(digest)
        actual = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                                dklen=len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


#: Compared against when the name is unknown, so that case costs a full hash too.
_DUMMY_HASH = f"scrypt${_N}${_R}${_P}${'00' * 16}${'00' * 32}"


def parse_groups(text: str) -> tuple[str, ...]:
    """``"g1, g2"`` -> ``("g1", "g2")``; refuses names with spaces or punctuation other than ``._-@*``."""
    groups = tuple(dict.fromkeys(g.strip() for g in text.split(",") if g.strip()))
    bad = [g for g in groups if not _GROUP.match(g)]
    if bad:
        raise AccountError(f"group name {bad[0]!r} is not allowed: use letters, digits and . _ - @ only")
    return groups


def add_user(kb: KnowledgeBase, name: str, password: str, groups: tuple[str, ...] = ()) -> Account:
    """Create an account; refuses an existing name (remove it first) and an empty password."""
    if not _NAME.match(name):
        raise AccountError(f"user name {name!r} is not allowed: 1-64 letters, digits or . _ - @")
    if not password:
        raise AccountError(f"user {name!r}: the password is empty; give a non-empty password")
    account = Account(User(name=name, groups=tuple(groups)), time.time())
    with kb.transaction(content=False) as conn:
        if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
            raise AccountError(f"user {name!r} already exists: `zhiku user remove {name}` first to replace it")
        conn.execute(
            "INSERT INTO users (name, password_hash, groups, created_at) VALUES (?,?,?,?)",
            (name, hash_password(password), json.dumps(list(groups), ensure_ascii=False), account.created_at),
        )
    return account


def remove_user(kb: KnowledgeBase, name: str) -> bool:
    """Delete an account; False when there was none of that name."""
    with kb.transaction(content=False) as conn:
        return conn.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount > 0


def accounts(kb: KnowledgeBase) -> list[Account]:
    rows = kb.query("SELECT name, groups, created_at FROM users ORDER BY name")
    return [Account(User(name=r[0], groups=tuple(json.loads(r[1]))), r[2]) for r in rows]


def has_users(kb: KnowledgeBase) -> bool:
    """Whether sign-in is required (any account exists)."""
    return bool(kb.query("SELECT 1 FROM users LIMIT 1"))


def authenticate(kb: KnowledgeBase, name: str, password: str) -> User | None:
    """The signed-in user, or None for a wrong name or password (indistinguishable by design)."""
    rows = kb.query("SELECT password_hash, groups FROM users WHERE name = ?", (name,))
    stored = rows[0][0] if rows else _DUMMY_HASH
    if not verify_password(password, stored) or not rows:
        return None
    return User(name=name, groups=tuple(json.loads(rows[0][1])))


def lookup(kb: KnowledgeBase, name: str) -> User | None:
    """The account ``name`` as stored now (None once removed), so group changes apply on the next page run."""
    rows = kb.query("SELECT groups FROM users WHERE name = ?", (name,))
    return User(name=name, groups=tuple(json.loads(rows[0][0]))) if rows else None


def is_admin(user: User, admin_group: str) -> bool:
    """Admins may ingest: members of ``admin_group``, and the all-seeing local user."""
    return user.sees_all or admin_group in user.groups
