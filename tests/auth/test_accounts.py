"""Accounts, aliases, SASL secrets, the login throttle and the ``mailcore user`` CLI."""

from __future__ import annotations

import base64
import hashlib
import hmac
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from mailcore.auth.accounts import (
    _RECHECK,
    ACCOUNTS_FILE,
    AccountError,
    Accounts,
    scram_secrets,
)
from mailcore.auth.throttle import LoginThrottle

# Cheap argon2id parameters: the tests check behaviour, not hash strength.
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def make(tmp_path: Path, **kw: bool) -> Accounts:
    return Accounts(tmp_path, hasher=FAST, **kw)  # type: ignore[arg-type]


def test_lookup_sees_another_process_change(tmp_path: Path) -> None:
    # The server remembers found addresses; a user deleted or an alias
    # removed by another connection (``mailcore user del`` while serving)
    # is not found once the files were looked at again (_RECHECK seconds
    # at most), however fast the changes come. Added ones are found at once.
    server, tool = make(tmp_path), make(tmp_path)
    tool.add_user("ann@example.org", "pw")
    for round_ in range(60):
        alias = f"a{round_}@example.org"
        tool.add_alias(alias, "ann@example.org")
        assert server.lookup(alias) == "ann@example.org"
        assert server.lookup("ann@example.org") == "ann@example.org"
        # The next commit starts the WAL over: same file size, maybe the same time stamp.
        tool._db().execute("PRAGMA wal_checkpoint(RESTART)")
        tool.delete_alias(alias)
        time.sleep(_RECHECK)
        assert server.lookup(alias) is None, round_
    tool.delete_user("ann@example.org")
    time.sleep(_RECHECK)
    assert server.lookup("ann@example.org") is None
    server.close()
    tool.close()


async def test_add_verify_alias_passwd_delete(tmp_path: Path) -> None:
    acc = make(tmp_path)
    assert acc.add_user("Alice@Example.ORG", "s3cret") == "alice@example.org"
    assert await acc.verify_password("alice@example.org", "s3cret") == "alice@example.org"
    assert await acc.verify_password("ALICE@example.org", "s3cret") == "alice@example.org"
    assert await acc.verify_password("alice@example.org", "wrong") is None
    assert await acc.verify_password("nobody@example.org", "s3cret") is None
    acc.add_alias("postmaster@example.org", "alice@example.org")
    assert acc.lookup("Postmaster@example.org") == "alice@example.org"
    assert await acc.verify_password("postmaster@example.org", "s3cret") == "alice@example.org"
    with pytest.raises(AccountError):
        acc.add_user("alice@example.org", "x")
    with pytest.raises(AccountError):
        acc.add_alias("x@example.org", "nobody@example.org")
    acc.set_password("alice@example.org", "new")
    assert await acc.verify_password("alice@example.org", "s3cret") is None
    assert await acc.verify_password("alice@example.org", "new") == "alice@example.org"
    [listed] = acc.list_accounts()
    assert (listed.address, listed.aliases) == ("alice@example.org", ("postmaster@example.org",))
    assert acc.local_domains() == {"example.org"}
    acc.delete_user("alice@example.org")
    assert acc.lookup("alice@example.org") is None
    assert acc.lookup("postmaster@example.org") is None
    assert await acc.verify_password("alice@example.org", "new") is None
    acc.close()


async def test_password_is_stored_as_argon2id_only_by_default(tmp_path: Path) -> None:
    acc = make(tmp_path)
    acc.add_user("bob@example.org", "hunter2")
    assert await acc.scram_secrets("bob@example.org") is None
    assert await acc.cram_secret("bob@example.org") is None
    acc.close()
    db = sqlite3.connect(tmp_path / ACCOUNTS_FILE)
    row = db.execute("SELECT * FROM users").fetchone()
    db.close()
    assert row[1].startswith("$argon2id$")
    assert row[2:] == (None, None, None, None, None)
    assert b"hunter2" not in (tmp_path / ACCOUNTS_FILE).read_bytes()


def test_no_catch_all_unless_configured(tmp_path: Path) -> None:
    acc = make(tmp_path)
    acc.add_user("bob@example.org", "pw")
    assert acc.lookup("random@example.org") is None
    acc.close()
    catch = Accounts(tmp_path, hasher=FAST, catch_all={"example.org": "bob@example.org"})
    assert catch.lookup("random@example.org") == "bob@example.org"
    assert catch.lookup("random@other.example") is None
    assert catch.lookup("not an address") is None
    catch.close()


def test_scram_secrets_match_rfc7677_test_vector() -> None:
    # RFC 7677 section 3: user "user", password "pencil", salt
    # W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations; the server signature in the
    # example proves ServerKey, the client proof proves StoredKey.
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    _s, iters, stored, server = scram_secrets("pencil", salt=salt, iterations=4096)
    auth_message = (
        b"n=user,r=rOprNGfwEbeRWgbNEkqO,"
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    )
    signature = hmac.new(server, auth_message, hashlib.sha256).digest()
    assert base64.b64encode(signature) == b"6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    client_sig = hmac.new(stored, auth_message, hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(proof, client_sig, strict=True))
    assert hashlib.sha256(client_key).digest() == stored
    assert iters == 4096


async def test_challenge_secrets_only_when_enabled(tmp_path: Path) -> None:
    acc = make(tmp_path, scram=True, cram=True)
    acc.add_user("carol@example.org", "pencil")
    acc.add_alias("c@example.org", "carol@example.org")
    secrets = await acc.scram_secrets("c@example.org")
    assert secrets is not None
    salt, iters, stored, server = secrets
    assert (salt, iters, stored, server) == scram_secrets("pencil", salt=salt, iterations=iters)
    assert await acc.cram_secret("carol@example.org") == b"pencil"
    assert await acc.scram_secrets("nobody@example.org") is None
    assert await acc.cram_secret("nobody@example.org") is None
    acc.close()
    # The same database with the mechanisms off hands out nothing.
    off = make(tmp_path)
    assert await off.scram_secrets("carol@example.org") is None
    assert await off.cram_secret("carol@example.org") is None
    off.close()


async def test_secrets_are_filled_in_at_next_login_after_enabling(tmp_path: Path) -> None:
    plain = make(tmp_path)
    plain.add_user("dan@example.org", "pw")
    plain.close()
    acc = make(tmp_path, scram=True)
    assert await acc.scram_secrets("dan@example.org") is None
    assert await acc.verify_password("dan@example.org", "pw") == "dan@example.org"
    secrets = await acc.scram_secrets("dan@example.org")
    assert secrets is not None and secrets == scram_secrets(
        "pw", salt=secrets[0], iterations=secrets[1]
    )
    acc.close()


def test_throttle_grows_per_account_and_per_peer_and_forgets() -> None:
    t = LoginThrottle(base=1.0, maximum=8.0, forget_after=100.0)
    assert t.delay("a@x", "10.0.0.1", now=0) == 0
    for i in range(5):
        t.failure("a@x", "10.0.0.1", now=i)
    assert t.delay("a@x", "10.0.0.1", now=5) == 8.0  # capped: 1, 2, 4, 8, 8
    # Another peer guessing the same account is slowed by the account's record.
    assert t.delay("A@X", "10.9.9.9", now=5) == 8.0
    # The same peer trying another account is slowed by the peer's record.
    assert t.delay("b@x", "10.0.0.1", now=5) == 8.0
    assert t.delay("b@x", "10.9.9.9", now=5) == 0
    t.failure("b@x", "10.9.9.9", now=6)
    t.failure("b@x", "10.9.9.9", now=7)
    assert t.delay("b@x", "10.9.9.9", now=7) == 2.0
    # A success clears the account, not the peer.
    t.success("a@x", "10.0.0.1", now=8)
    assert t.delay("a@x", "10.8.8.8", now=8) == 0
    assert t.delay("a@x", "10.0.0.1", now=8) == 8.0
    # Quiet for forget_after seconds: forgotten.
    assert t.delay("b@x", "10.0.0.1", now=200) == 0


def test_throttle_memory_is_bounded() -> None:
    t = LoginThrottle(max_entries=100)
    for i in range(1000):
        t.failure(f"u{i}@x", f"10.0.{i // 256}.{i % 256}", now=float(i))
    assert len(t._records) <= 100


def run_cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "mailcore", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_cli_user_add_list_passwd_del(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    added = run_cli("user", "add", "Eve@Example.org", "--data", data, "--password-stdin",
                    stdin=b"first pw\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    # The store account (INBOX + special use) exists at once.
    assert (tmp_path / "data" / "mail" / "eve@example.org" / ".Sent" / "cur").is_dir()
    again = run_cli("user", "add", "eve@example.org", "--data", data, "--password-stdin",
                    stdin=b"x\n")  # fmt: skip
    assert again.returncode == 1 and b"exists" in again.stderr
    alias = run_cli("user", "add", "e@example.org", "--alias-of", "eve@example.org", "--data", data)
    assert alias.returncode == 0, alias.stderr
    listed = run_cli("user", "list", "--data", data, "--config", "ignored.toml")
    assert listed.stdout == b"eve@example.org e@example.org\n"
    pw = run_cli("user", "passwd", "eve@example.org", "--data", data, "--password-stdin",
                 stdin=b"second pw\n")  # fmt: skip
    assert pw.returncode == 0, pw.stderr
    acc = Accounts(tmp_path / "data", hasher=FAST)
    assert acc.check_password("e@example.org", "second pw") == "eve@example.org"
    assert acc.check_password("eve@example.org", "first pw") is None
    acc.close()
    assert run_cli("user", "del", "e@example.org", "--data", data).returncode == 0
    assert run_cli("user", "list", "--data", data).stdout == b"eve@example.org\n"
    assert run_cli("user", "del", "eve@example.org", "--data", data).returncode == 0
    assert run_cli("user", "list", "--data", data).stdout == b""
    missing = run_cli("user", "del", "eve@example.org", "--data", data)
    assert missing.returncode == 1 and b"no account" in missing.stderr


def test_cli_store_reindex(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run_cli("user", "add", "f@example.org", "--data", str(data), "--password-stdin",
                   stdin=b"pw\n").returncode == 0  # fmt: skip
    new = data / "mail" / "f@example.org" / "new"
    (new / "1700000000.M1P1.elsewhere,U=7").write_bytes(b"Subject: a\r\n\r\n")
    (new / "1700000001.M1P1.elsewhere").write_bytes(b"Subject: b\r\n\r\n")
    out = run_cli("store", "reindex", "--data", str(data))
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"indexed 2 messages\n"
    names = sorted(p.name for p in new.iterdir())
    assert names == ["1700000000.M1P1.elsewhere,U=7", "1700000001.M1P1.elsewhere,U=8"]
