"""User accounts shared by the CLI, the UI and the API: scrypt password hashes, access groups, sign-in.

Access control only matters once someone configures users: a knowledge base without any user rows
is used by one local user who sees everything (``LOCAL_USER``). Password checks run in constant time,
and an unknown name costs the same work as a wrong password, so timing tells nothing about who exists.
Failed sign-ins are kept in the knowledge base (``sign_in_failures``), so the lock-out after too many
of them holds across restarts and across every process serving the same knowledge base; unknown
names are counted and locked like real ones. Sign-ins and account changes go to the audit log.

API keys (``create_token``) let programs act as a user: a key is 256 random bits, shown once and
stored only as its SHA-256 (a fast hash suffices for a key nobody chose: there is no dictionary to
try). A key acts with its user's groups as stored now; it stops working when revoked, when it
expires, or when its user is removed (removing a user deletes their keys, so a new account of the
same name never inherits them).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from zhiku import audit
from zhiku.errors import AccountError, SignInLockedError
from zhiku.kb import KnowledgeBase
from zhiku.records import User

#: scrypt cost (n, r, p) at OWASP's current guidance: 128 MiB and a few hundred ms per check. Hashes
#: name their own cost, so older, cheaper ones still verify (and are upgraded at the next sign-in).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
MIN_PASSWORD_LENGTH = 10
#: This many failed sign-ins for one name within ``FAILURE_WINDOW_S`` lock it for ``LOCKOUT_S``.
MAX_FAILURES = 5
FAILURE_WINDOW_S = 15 * 60
LOCKOUT_S = 15 * 60

_NAME = re.compile(r"^[\w.@-]{1,64}$")
_GROUP = re.compile(r"^[\w.@*-]{1,64}$")
_FAILURES_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS sign_in_failures ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, time REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS sign_in_failures_name ON sign_in_failures(name, time)",
)

_TOKENS_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS api_tokens ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE,"
    " hint TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL, revoked_at REAL)",
    "CREATE INDEX IF NOT EXISTS api_tokens_user ON api_tokens(user)",
)
#: Every API key starts with this, so a leaked one is recognisable (secret scanners, logs).
KEY_PREFIX = "zk_"

Clock = Callable[[], float]


@dataclass(frozen=True)
class Account:
    """A configured user as stored: who they are (``user``) and when the account was made."""

    user: User
    created_at: float


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=dklen,
                          maxmem=129 * r * (n + p + 2))


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$digest`` (hex): self-describing, so the cost can rise without breaking old rows."""
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, 32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored`` (at the cost it names); a malformed stored hash never matches."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt" or int(n) > 2**20:
            return False
        expected = bytes.fromhex(digest)
        actual = _scrypt(password, bytes.fromhex(salt), int(n), int(r), int(p), len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


def _is_current(stored: str) -> bool:
    return stored.split("$")[1:4] == [str(SCRYPT_N), str(SCRYPT_R), str(SCRYPT_P)]


#: Compared against when the name is unknown, so that case costs a full hash too.
_DUMMY_HASH = f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${'00' * 16}${'00' * 32}"


def parse_groups(text: str) -> tuple[str, ...]:
    """``"g1, g2"`` -> ``("g1", "g2")``; refuses names with spaces or punctuation other than ``._-@*``."""
    groups = tuple(dict.fromkeys(g.strip() for g in text.split(",") if g.strip()))
    bad = [g for g in groups if not _GROUP.match(g)]
    if bad:
        raise AccountError(f"group name {bad[0]!r} is not allowed: use letters, digits and . _ - @ only")
    return groups


def check_password(name: str, password: str) -> None:
    """Refuse a password shorter than ``MIN_PASSWORD_LENGTH`` characters."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"user {name!r}: the password has {len(password)} characters; give one of at least "
                           f"{MIN_PASSWORD_LENGTH} (a few words make a long password easy to remember)")


def add_user(kb: KnowledgeBase, name: str, password: str, groups: tuple[str, ...] = ()) -> Account:
    """Create an account; refuses an existing name (remove it first) and a short password."""
    if not _NAME.match(name):
        raise AccountError(f"user name {name!r} is not allowed: 1-64 letters, digits or . _ - @")
    check_password(name, password)
    account = Account(User(name=name, groups=tuple(groups)), time.time())
    with kb.transaction(content=False) as conn:
        if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
            raise AccountError(f"user {name!r} already exists: `zhiku user remove {name}` first to replace it")
        conn.execute(
            "INSERT INTO users (name, password_hash, groups, created_at) VALUES (?,?,?,?)",
            (name, hash_password(password), json.dumps(list(groups), ensure_ascii=False), account.created_at),
        )
    audit.record(kb, audit.operator(), audit.USER_ADD, name=name, groups=list(groups))
    return account


def remove_user(kb: KnowledgeBase, name: str) -> bool:
    """Delete an account and its API keys; False when there was none of that name."""
    with kb.transaction(content=False) as conn:
        removed = conn.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount > 0
        _ensure_tokens(conn)
        conn.execute("DELETE FROM api_tokens WHERE user = ?", (name,))
    if removed:
        audit.record(kb, audit.operator(), audit.USER_REMOVE, name=name)
    return removed


def set_groups(kb: KnowledgeBase, name: str, groups: tuple[str, ...]) -> bool:
    """Replace an account's access groups (they apply at the user's next page run); False when no such user."""
    with kb.transaction(content=False) as conn:
        changed = conn.execute("UPDATE users SET groups = ? WHERE name = ?",
                               (json.dumps(list(groups), ensure_ascii=False), name)).rowcount > 0
    if changed:
        audit.record(kb, audit.operator(), audit.USER_GROUPS, name=name, groups=list(groups))
    return changed


def accounts(kb: KnowledgeBase) -> list[Account]:
    rows = kb.query("SELECT name, groups, created_at FROM users ORDER BY name")
    return [Account(User(name=r[0], groups=tuple(json.loads(r[1]))), r[2]) for r in rows]


def has_users(kb: KnowledgeBase) -> bool:
    """Whether sign-in is required (any account exists)."""
    return bool(kb.query("SELECT 1 FROM users LIMIT 1"))


def locked_until(kb: KnowledgeBase, name: str, now: float) -> float | None:
    """When the lock-out of ``name`` ends, or None when it may try to sign in now.

    Locked: ``MAX_FAILURES`` failures within ``FAILURE_WINDOW_S`` of each other, the last of them
    less than ``LOCKOUT_S`` ago. Attempts while locked are refused unchecked and not counted, so the
    lock ends on time however often someone keeps trying.
    """
    with kb.transaction(content=False) as conn:
        for statement in _FAILURES_SCHEMA:
            conn.execute(statement)
        conn.execute("DELETE FROM sign_in_failures WHERE time < ?", (now - FAILURE_WINDOW_S - LOCKOUT_S,))
        times = [r[0] for r in conn.execute("SELECT time FROM sign_in_failures WHERE name = ? ORDER BY time",
                                            (name,))]
    ends = [t + LOCKOUT_S for first, t in zip(times, times[MAX_FAILURES - 1:]) if t - first <= FAILURE_WINDOW_S]
    return max(ends) if ends and max(ends) > now else None


def authenticate(kb: KnowledgeBase, name: str, password: str, clock: Clock = time.time) -> User | None:
    """The signed-in user, or None for a wrong name or password (indistinguishable by design).

    Raises ``SignInLockedError`` while ``name`` is locked out. A success clears the name's failures
    and upgrades a hash made at an older scrypt cost.
    """
    now = clock()
    until = locked_until(kb, name, now)
    if until is not None:
        audit.record(kb, name, audit.SIGN_IN, clock=clock, ok=False, locked=True)
        minutes = max(1, math.ceil((until - now) / 60))
        raise SignInLockedError(f"too many failed sign-ins for {name!r}: try again in {minutes} minute"
                                f"{'s' if minutes > 1 else ''}, or ask an administrator")
    rows = kb.query("SELECT password_hash, groups FROM users WHERE name = ?", (name,))
    stored = rows[0][0] if rows else _DUMMY_HASH
    ok = verify_password(password, stored) and bool(rows)
    upgraded = hash_password(password) if ok and not _is_current(stored) else None
    with kb.transaction(content=False) as conn:
        if ok:
            conn.execute("DELETE FROM sign_in_failures WHERE name = ?", (name,))
            if upgraded:
                conn.execute("UPDATE users SET password_hash = ? WHERE name = ?", (upgraded, name))
        else:
            conn.execute("INSERT INTO sign_in_failures (name, time) VALUES (?, ?)", (name, now))
    audit.record(kb, name, audit.SIGN_IN, clock=clock, ok=ok)
    return User(name=name, groups=tuple(json.loads(rows[0][1]))) if ok else None


def lookup(kb: KnowledgeBase, name: str) -> User | None:
    """The account ``name`` as stored now (None once removed), so group changes apply on the next page run."""
    rows = kb.query("SELECT groups FROM users WHERE name = ?", (name,))
    return User(name=name, groups=tuple(json.loads(rows[0][0]))) if rows else None


def is_admin(user: User, admin_group: str) -> bool:
    """Admins may ingest: members of ``admin_group``, and the all-seeing local user."""
    return user.sees_all or admin_group in user.groups


# ---------------------------------------------------------------------------------- API keys
@dataclass(frozen=True)
class ApiToken:
    """An API key as stored (never the key itself): whose it is, its first characters, its lifetime."""

    id: int
    user: str
    hint: str
    created_at: float
    expires_at: float | None
    revoked_at: float | None

    def active(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)

    def to_json(self, now: float) -> dict[str, object]:
        return {"id": self.id, "user": self.user, "hint": self.hint, "created_at": self.created_at,
                "expires_at": self.expires_at, "revoked_at": self.revoked_at, "active": self.active(now)}


def _ensure_tokens(conn: sqlite3.Connection) -> None:
    for statement in _TOKENS_SCHEMA:
        conn.execute(statement)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_token(kb: KnowledgeBase, name: str, expires_at: float | None = None,
                 clock: Clock = time.time) -> tuple[ApiToken, str]:
    """A new API key for user ``name``: the stored record and the key (returned only this once)."""
    now = clock()
    if expires_at is not None and expires_at <= now:
        raise AccountError(f"the expiry of the new key for {name!r} is in the past; give a future one "
                           "(e.g. --expires 90d)")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with kb.transaction(content=False) as conn:
        if not conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
            raise AccountError(f"no user named {name!r}: create it first (`zhiku user add {name} --groups G1,G2`)")
        _ensure_tokens(conn)
        cur = conn.execute(
            "INSERT INTO api_tokens (user, key_hash, hint, created_at, expires_at) VALUES (?,?,?,?,?)",
            (name, key_hash(key), key[:len(KEY_PREFIX) + 4], now, expires_at))
        token = ApiToken(int(cur.lastrowid), name, key[:len(KEY_PREFIX) + 4], now, expires_at, None)
    audit.record(kb, audit.operator(), audit.TOKEN_CREATE, clock=clock, name=name, token_id=token.id,
                 expires_at=expires_at)
    return token, key


def _has_tokens_table(kb: KnowledgeBase) -> bool:
    return bool(kb.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'api_tokens'"))


def tokens(kb: KnowledgeBase, name: str | None = None) -> list[ApiToken]:
    """The stored keys (of ``name`` only, when given), oldest first, revoked and expired ones included."""
    if not _has_tokens_table(kb):
        return []
    sql = "SELECT id, user, hint, created_at, expires_at, revoked_at FROM api_tokens"
    rows = kb.query(sql + " WHERE user = ? ORDER BY id", (name,)) if name else kb.query(sql + " ORDER BY id")
    return [ApiToken(*r) for r in rows]


def revoke_token(kb: KnowledgeBase, token_id: int, clock: Clock = time.time) -> bool:
    """Revoke a key for good; False when no active key has that id."""
    with kb.transaction(content=False) as conn:
        _ensure_tokens(conn)
        revoked = conn.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                               (clock(), token_id)).rowcount > 0
    if revoked:
        audit.record(kb, audit.operator(), audit.TOKEN_REVOKE, clock=clock, token_id=token_id)
    return revoked


def user_for_key(kb: KnowledgeBase, key: str, clock: Clock = time.time) -> User | None:
    """The user an API key acts as (their groups as stored now), or None for an unknown, revoked or
    expired key, or one whose user is gone."""
    if not key.startswith(KEY_PREFIX) or not _has_tokens_table(kb):
        return None
    rows = kb.query(
        "SELECT t.user, u.groups, t.expires_at, t.revoked_at FROM api_tokens t JOIN users u ON u.name = t.user"
        " WHERE t.key_hash = ?", (key_hash(key),))
    if not rows:
        return None
    name, groups, expires_at, revoked_at = rows[0]
    if revoked_at is not None or (expires_at is not None and clock() >= expires_at):
        return None
    return User(name=name, groups=tuple(json.loads(groups)))
