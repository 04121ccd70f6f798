"""Accounts (``zhiku.accounts``): password rules and hashing, groups, sign-in with lock-out, the CLI."""
from __future__ import annotations

import hashlib
import json
from cli_runner import run_zhiku as _zhiku
from pathlib import Path

import pytest

from zhiku.accounts import (
    FAILURE_WINDOW_S,
    LOCKOUT_S,
    MAX_FAILURES,
    MIN_PASSWORD_LENGTH,
    SCRYPT_N,
    SCRYPT_P,
    SCRYPT_R,
    accounts,
    add_user,
    authenticate,
    has_users,
    hash_password,
    is_admin,
    parse_groups,
    remove_user,
    set_groups,
    verify_password,
)
from zhiku.errors import AccountError, SignInLockedError
from zhiku.kb import KnowledgeBase
from zhiku.records import LOCAL_USER, User

PASSWORD = "correct horse battery"


@pytest.fixture()
def kb(tmp_path: Path) -> KnowledgeBase:
    with KnowledgeBase.open(tmp_path / "kb", "minilm", 384) as kb:
        yield kb


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_password_hashes_are_salted_scrypt_at_owasp_cost_and_verified() -> None:
    first, second = hash_password("s3cret-s3cret"), hash_password("s3cret-s3cret")
    assert first != second
    assert first.split("$")[:4] == ["scrypt", str(2**17), "8", "1"] == ["scrypt", str(SCRYPT_N), str(SCRYPT_R),
                                                                         str(SCRYPT_P)]
    assert verify_password("s3cret-s3cret", first) and verify_password("s3cret-s3cret", second)
    assert not verify_password("S3cret-s3cret", first)
    assert not verify_password("s3cret", "garbage") and not verify_password("s3cret", "md5$1$2$3$00$00")


def old_hash(password: str, n: int = 2**14) -> str:
    """A hash as the earlier, cheaper parameters made it."""
    salt = b"\x01" * 16
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=8, p=1, dklen=32)
    return f"scrypt${n}$8$1${salt.hex()}${digest.hex()}"


def test_hashes_made_with_older_parameters_still_verify_and_are_upgraded_at_sign_in(kb: KnowledgeBase) -> None:
    stored = old_hash(PASSWORD)
    assert verify_password(PASSWORD, stored) and not verify_password("wrong password", stored)
    add_user(kb, "olga", PASSWORD, ("hr",))
    with kb.transaction(content=False) as conn:
        conn.execute("UPDATE users SET password_hash = ? WHERE name = 'olga'", (stored,))
    assert authenticate(kb, "olga", PASSWORD) == User("olga", ("hr",))
    upgraded = kb.query("SELECT password_hash FROM users WHERE name = 'olga'")[0][0]
    assert upgraded.split("$")[1] == str(SCRYPT_N) and verify_password(PASSWORD, upgraded)


def test_a_password_shorter_than_the_minimum_is_refused_with_the_rule(kb: KnowledgeBase) -> None:
    assert MIN_PASSWORD_LENGTH >= 10
    with pytest.raises(AccountError, match=f"at least {MIN_PASSWORD_LENGTH}"):
        add_user(kb, "carol", "x" * (MIN_PASSWORD_LENGTH - 1))
    with pytest.raises(AccountError, match="at least"):
        add_user(kb, "carol", "")
    add_user(kb, "carol", "x" * MIN_PASSWORD_LENGTH)
    assert [a.user.name for a in accounts(kb)] == ["carol"]


def test_a_knowledge_base_without_users_has_one_all_seeing_local_user(kb: KnowledgeBase) -> None:
    assert not has_users(kb)
    assert LOCAL_USER.sees_all and LOCAL_USER.can_see(("hr",))
    assert is_admin(LOCAL_USER, "admin")


def test_users_sign_in_with_their_groups_and_group_changes_apply(kb: KnowledgeBase) -> None:
    add_user(kb, "alice", "pw-alice-long", ("hr", "admin"))
    add_user(kb, "bob", "pw-bob-long-enough", ())
    assert has_users(kb)
    alice = authenticate(kb, "alice", "pw-alice-long")
    assert alice == User(name="alice", groups=("hr", "admin"))
    assert is_admin(alice, "admin") and not is_admin(authenticate(kb, "bob", "pw-bob-long-enough"), "admin")
    assert authenticate(kb, "alice", "pw-bob-long-enough") is None
    assert authenticate(kb, "nobody", "pw-alice-long") is None
    assert [a.user.name for a in accounts(kb)] == ["alice", "bob"]
    assert set_groups(kb, "bob", ("finance",)) and not set_groups(kb, "nobody", ())
    assert authenticate(kb, "bob", "pw-bob-long-enough") == User("bob", ("finance",))


def test_account_mistakes_are_refused_with_the_fix(kb: KnowledgeBase) -> None:
    add_user(kb, "alice", PASSWORD)
    with pytest.raises(AccountError, match="zhiku user remove alice"):
        add_user(kb, "alice", PASSWORD)
    with pytest.raises(AccountError, match="not allowed"):
        add_user(kb, "with space", PASSWORD)
    with pytest.raises(AccountError, match="group name"):
        parse_groups("hr, fin ance")
    assert parse_groups(" hr, finance ,hr,") == ("hr", "finance")
    assert remove_user(kb, "alice") and not remove_user(kb, "alice")


def test_repeated_failed_sign_ins_lock_the_account_until_the_lockout_ends(tmp_path: Path) -> None:
    clock = Clock()
    with KnowledgeBase.open(tmp_path / "kb", "minilm", 384) as kb:
        add_user(kb, "dora", PASSWORD)
        for _ in range(MAX_FAILURES - 1):
            assert authenticate(kb, "dora", "wrong password", clock=clock) is None
            clock.now += 60
    with KnowledgeBase.open(tmp_path / "kb", "minilm") as kb:  # failures are stored: they survive a restart
        assert authenticate(kb, "dora", "wrong password", clock=clock) is None
        with pytest.raises(SignInLockedError, match="try again in 15 minutes"):
            authenticate(kb, "dora", PASSWORD, clock=clock)  # even the right password waits
        clock.now += LOCKOUT_S - 60
        with pytest.raises(SignInLockedError, match="try again in 1 minute"):
            authenticate(kb, "dora", PASSWORD, clock=clock)
        clock.now += 61
        assert authenticate(kb, "dora", PASSWORD, clock=clock) == User("dora", ())


def test_failures_spread_wider_than_the_window_do_not_lock(kb: KnowledgeBase) -> None:
    clock = Clock()
    add_user(kb, "erin", PASSWORD)
    for _ in range(MAX_FAILURES + 1):
        assert authenticate(kb, "erin", "wrong password", clock=clock) is None
        clock.now += FAILURE_WINDOW_S / (MAX_FAILURES - 1) + 1
    assert authenticate(kb, "erin", PASSWORD, clock=clock) is not None


def test_a_success_clears_earlier_failures(kb: KnowledgeBase) -> None:
    clock = Clock()
    add_user(kb, "fay", PASSWORD)
    for _ in range(MAX_FAILURES - 1):
        authenticate(kb, "fay", "wrong password", clock=clock)
    assert authenticate(kb, "fay", PASSWORD, clock=clock) is not None
    assert authenticate(kb, "fay", "wrong password", clock=clock) is None
    assert authenticate(kb, "fay", PASSWORD, clock=clock) is not None  # one failure since, not five


def test_unknown_names_lock_like_real_ones_so_lock_out_tells_nothing(kb: KnowledgeBase) -> None:
    clock = Clock()
    for _ in range(MAX_FAILURES):
        assert authenticate(kb, "ghost", "wrong password", clock=clock) is None
    with pytest.raises(SignInLockedError):
        authenticate(kb, "ghost", "wrong password", clock=clock)




def test_user_commands_add_list_change_groups_and_remove(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    KnowledgeBase.open(tmp_path / "kb", "minilm", 384).close()
    kb = str(tmp_path / "kb")
    code, out, err = _zhiku(capsys, monkeypatch, "user", "add", "alice", "--groups", "hr,admin", "--password-stdin",
                            "--kb", kb, stdin=f"{PASSWORD}\n")
    assert code == 0, err
    code, out, err = _zhiku(capsys, monkeypatch, "user", "add", "alice", "--password-stdin", "--kb", kb,
                            stdin=f"{PASSWORD}\n")
    assert code == 2 and "already exists" in err and "Traceback" not in err
    code, out, err = _zhiku(capsys, monkeypatch, "user", "add", "bob", "--password-stdin", "--kb", kb, stdin="short\n")
    assert code == 2 and "at least 10" in err
    code, out, err = _zhiku(capsys, monkeypatch, "user", "list", "--json", "--kb", kb)
    assert [(u["name"], u["groups"]) for u in json.loads(out)] == [("alice", ["hr", "admin"])]
    code, out, err = _zhiku(capsys, monkeypatch, "user", "groups", "alice", "finance", "--json", "--kb", kb)
    assert code == 0 and json.loads(out) == {"name": "alice", "groups": ["finance"]}
    with KnowledgeBase.open(kb, "minilm") as opened:
        assert authenticate(opened, "alice", PASSWORD) == User("alice", ("finance",))
    assert _zhiku(capsys, monkeypatch, "user", "groups", "nobody", "hr", "--kb", kb)[0] == 1
    assert _zhiku(capsys, monkeypatch, "user", "remove", "alice", "--kb", kb)[0] == 0
    code, out, err = _zhiku(capsys, monkeypatch, "user", "remove", "alice", "--kb", kb)
    assert code == 1 and "no user named 'alice'" in err
