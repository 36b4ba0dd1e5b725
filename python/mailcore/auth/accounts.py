"""Accounts: local addresses, aliases, password hashes and SASL secrets.

Stored in ``accounts.sqlite`` in the data directory. An account is named by
its canonical address; aliases map further addresses onto it. Passwords are
hashed with argon2id (argon2-cffi: the reference implementation's binding,
maintained by the ``attrs`` author, with sane OWASP-level defaults).

Challenge-response mechanisms need more than a hash, and that has a cost
the operator chooses explicitly:

* ``scram=True`` keeps SCRAM-SHA-256 ``StoredKey``/``ServerKey`` (RFC 5802):
  not the password, but enough to impersonate the *server* to a client, and
  an offline dictionary attack costs only ``iterations`` PBKDF2 rounds per
  guess instead of argon2id.
* ``cram=True`` keeps the password itself (CRAM-MD5 and APOP need it):
  whoever reads ``accounts.sqlite`` can log in as every user.

Secrets for an enabled mechanism are written whenever a password is set,
and filled in at the next successful password login for users whose
password was set before the mechanism was enabled.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = ["ACCOUNTS_FILE", "Account", "AccountError", "Accounts", "scram_secrets"]

#: File name of the account database inside the data directory.
ACCOUNTS_FILE = "accounts.sqlite"
# lookup()'s memory of found addresses: at most this many, for at most this long.
_FOUND_MAX = 10_000
_FOUND_FOR = 2.0
# ... and its files are looked at no more often than this. A stat() lets go
# of the GIL, and under load the event loop then waits for the store's
# threads to hand it back: two per RCPT cost an SMTP process a fifth of its
# throughput. A user or alias another process deletes may thus be found
# this long after its commit (an address added is found at once: unknown
# addresses are never remembered).
_RECHECK = 0.01
#: RFC 7677 asks for at least 4096 PBKDF2 iterations for SCRAM-SHA-256.
SCRAM_ITERATIONS = 4096

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users(
    address TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    scram_salt BLOB,
    scram_iterations INTEGER,
    scram_stored_key BLOB,
    scram_server_key BLOB,
    cram_secret BLOB
);
CREATE TABLE IF NOT EXISTS aliases(
    address TEXT PRIMARY KEY,
    account TEXT NOT NULL REFERENCES users(address) ON DELETE CASCADE
);
"""


class AccountError(Exception):
    """Adding an existing address, changing an unknown one, and the like."""


@dataclass(frozen=True, slots=True)
class Account:
    """An account and the aliases that deliver to it."""

    address: str
    aliases: tuple[str, ...]


def normalize_address(address: str) -> str:
    """Lower-case the whole address (lookups are case-insensitive, as in Postfix)."""
    text = address.strip().strip("<>").lower()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or len(text.split(None, 1)) != 1:
        raise AccountError(f"not an address: {address!r}")
    return text


def scram_secrets(
    password: str, *, salt: bytes, iterations: int
) -> tuple[bytes, int, bytes, bytes]:
    """(salt, iterations, StoredKey, ServerKey) for SCRAM-SHA-256 (RFC 5802 section 3)."""
    # RFC 5802 wants the password SASLprep'ed; NFKC is its core and covers
    # what users type in practice.
    import unicodedata

    normalized = unicodedata.normalize("NFKC", password).encode("utf-8")
    salted = hashlib.pbkdf2_hmac("sha256", normalized, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return salt, iterations, stored_key, server_key


class Accounts:
    """The account database; implements the SASL ``CredentialSource`` protocol.

    ``catch_all`` maps a local domain to the account that receives mail for
    unknown addresses of that domain; empty (the default) means none.
    ``hasher`` lets tests use a cheap argon2id parameter set.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        scram: bool = False,
        cram: bool = False,
        catch_all: Mapping[str, str] | None = None,
        hasher: PasswordHasher | None = None,
        scram_iterations: int = SCRAM_ITERATIONS,
    ) -> None:
        self.path = Path(root) / ACCOUNTS_FILE
        self._wal = self.path.with_name(self.path.name + "-wal")
        self.scram = scram
        self.cram = cram
        self.catch_all = {k.lower(): normalize_address(v) for k, v in (catch_all or {}).items()}
        self.hasher = hasher or PasswordHasher()
        self.scram_iterations = scram_iterations
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._dummy: str | None = None
        # Addresses found by lookup(), kept while no process wrote the
        # database (its files' sizes and times unchanged, looked at every
        # _RECHECK seconds at most) and for at most _FOUND_FOR seconds: an
        # SMTP RCPT then costs no query and, mostly, no system call. Unknown
        # addresses are never kept (a user just added is found at once).
        self._found: dict[str, str] = {}
        self._found_state: tuple[int, ...] = ()
        self._found_since = 0.0
        self._state_seen: tuple[int, ...] = ()
        self._state_at = float("-inf")

    @property
    def _dummy_hash(self) -> str:
        # Verified against when the user is unknown, so that an unknown user
        # costs the same argon2 time as a wrong password. Made on first use:
        # the CLI never needs it.
        if self._dummy is None:
            self._dummy = self.hasher.hash(os.urandom(16).hex())
        return self._dummy

    # -- plumbing ------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _secret_columns(
        self, password: str
    ) -> tuple[bytes | None, int | None, bytes | None, bytes | None, bytes | None]:
        salt: bytes | None = None
        iters: int | None = None
        stored: bytes | None = None
        server: bytes | None = None
        if self.scram:
            salt, iters, stored, server = scram_secrets(
                password, salt=os.urandom(16), iterations=self.scram_iterations
            )
        cram = password.encode("utf-8") if self.cram else None
        return salt, iters, stored, server, cram

    # -- management (synchronous: the CLI and tests call these) -------------------------------
    def add_user(self, address: str, password: str) -> str:
        """Create an account; return its canonical address."""
        addr = normalize_address(address)
        pw_hash = self.hasher.hash(password)
        salt, iters, stored, server, cram = self._secret_columns(password)
        with self._lock:
            db = self._db()
            if db.execute("SELECT 1 FROM aliases WHERE address=?", (addr,)).fetchone():
                raise AccountError(f"{addr} is an alias")
            try:
                db.execute(
                    "INSERT INTO users VALUES (?,?,?,?,?,?,?)",
                    (addr, pw_hash, salt, iters, stored, server, cram),
                )
            except sqlite3.IntegrityError:
                raise AccountError(f"{addr} exists") from None
        return addr

    def set_password(self, address: str, password: str) -> None:
        """Change an account's password (and its enabled SASL secrets)."""
        addr = normalize_address(address)
        pw_hash = self.hasher.hash(password)
        salt, iters, stored, server, cram = self._secret_columns(password)
        with self._lock:
            cur = self._db().execute(
                "UPDATE users SET password_hash=?, scram_salt=?, scram_iterations=?,"
                " scram_stored_key=?, scram_server_key=?, cram_secret=? WHERE address=?",
                (pw_hash, salt, iters, stored, server, cram, addr),
            )
            if cur.rowcount == 0:
                raise AccountError(f"no account {addr}")

    def delete_user(self, address: str) -> None:
        """Delete an account and its aliases."""
        addr = normalize_address(address)
        with self._lock:
            self._found.clear()
            db = self._db()
            db.execute("DELETE FROM aliases WHERE account=?", (addr,))
            if db.execute("DELETE FROM users WHERE address=?", (addr,)).rowcount == 0:
                raise AccountError(f"no account {addr}")

    def add_alias(self, alias: str, account: str) -> None:
        """Deliver mail for ``alias`` to ``account``."""
        alias_addr, acc = normalize_address(alias), normalize_address(account)
        with self._lock:
            db = self._db()
            if db.execute("SELECT 1 FROM users WHERE address=?", (alias_addr,)).fetchone():
                raise AccountError(f"{alias_addr} is an account")
            if not db.execute("SELECT 1 FROM users WHERE address=?", (acc,)).fetchone():
                raise AccountError(f"no account {acc}")
            try:
                db.execute("INSERT INTO aliases VALUES (?,?)", (alias_addr, acc))
            except sqlite3.IntegrityError:
                raise AccountError(f"{alias_addr} exists") from None

    def delete_alias(self, alias: str) -> None:
        """Remove an alias."""
        addr = normalize_address(alias)
        with self._lock:
            self._found.clear()
            if self._db().execute("DELETE FROM aliases WHERE address=?", (addr,)).rowcount == 0:
                raise AccountError(f"no alias {addr}")

    def list_accounts(self) -> list[Account]:
        """Every account with its aliases, by address."""
        with self._lock:
            db = self._db()
            users = [str(a) for (a,) in db.execute("SELECT address FROM users ORDER BY address")]
            aliases: dict[str, list[str]] = {}
            for alias, acc in db.execute("SELECT address, account FROM aliases ORDER BY address"):
                aliases.setdefault(str(acc), []).append(str(alias))
        return [Account(u, tuple(aliases.get(u, ()))) for u in users]

    def _files_state(self) -> tuple[int, ...]:
        """Inode, size and time of the database and its WAL: they change with every commit."""
        state: list[int] = []
        for path in (self.path, self._wal):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                state += (0, 0, 0)
            else:
                state += (st.st_ino, st.st_size, st.st_mtime_ns)
        return tuple(state)

    def lookup(self, address: str) -> str | None:
        """Canonical account for a local address or alias (or the domain's catch-all)."""
        try:
            addr = normalize_address(address)
        except AccountError:
            return None
        now = time.monotonic()
        if now - self._state_at >= _RECHECK:
            self._state_seen, self._state_at = self._files_state(), now
        state = self._state_seen
        with self._lock:
            if state != self._found_state or now - self._found_since > _FOUND_FOR:
                self._found.clear()
                self._found_state, self._found_since = state, now
            found = self._found.get(addr)
            if found is not None:
                return found
            db = self._db()
            row = db.execute("SELECT address FROM users WHERE address=?", (addr,)).fetchone()
            if row is None:
                row = db.execute("SELECT account FROM aliases WHERE address=?", (addr,)).fetchone()
            if row is not None:
                if len(self._found) >= _FOUND_MAX:
                    self._found.clear()
                self._found[addr] = str(row[0])
        if row is not None:
            return str(row[0])
        return self.catch_all.get(addr.rpartition("@")[2])

    def local_domains(self) -> set[str]:
        """Domains that have at least one account, alias or catch-all."""
        with self._lock:
            db = self._db()
            addrs = [str(a) for (a,) in db.execute("SELECT address FROM users")]
            addrs += [str(a) for (a,) in db.execute("SELECT address FROM aliases")]
        return {a.rpartition("@")[2] for a in addrs} | set(self.catch_all)

    def check_password(self, username: str, password: str) -> str | None:
        """Blocking form of :meth:`verify_password`."""
        account = self.lookup(username)
        row = None
        if account is not None:
            with self._lock:
                row = (
                    self._db()
                    .execute(
                        "SELECT password_hash, scram_salt, cram_secret FROM users WHERE address=?",
                        (account,),
                    )
                    .fetchone()
                )
        stored_hash = str(row[0]) if row is not None else self._dummy_hash
        try:
            self.hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        if row is None or account is None:
            return None  # the dummy hash matched by chance: still unknown
        if (
            (self.scram and row[1] is None)
            or (self.cram and row[2] is None)
            or self.hasher.check_needs_rehash(stored_hash)
        ):
            self.set_password(account, password)
        return account

    def _secrets(self, username: str) -> tuple[object, ...] | None:
        account = self.lookup(username)
        if account is None:
            return None
        with self._lock:
            row = (
                self._db()
                .execute(
                    "SELECT scram_salt, scram_iterations, scram_stored_key, scram_server_key,"
                    " cram_secret FROM users WHERE address=?",
                    (account,),
                )
                .fetchone()
            )
        return tuple(row) if row is not None else None

    # -- CredentialSource (auth/sasl.py contract) ------------------------------------------
    async def verify_password(self, username: str, password: str) -> str | None:
        """The canonical account if the password is right, else None (same cost either way)."""
        return await asyncio.to_thread(self.check_password, username, password)

    async def scram_secrets(self, username: str) -> tuple[bytes, int, bytes, bytes] | None:
        """SCRAM-SHA-256 (salt, iterations, StoredKey, ServerKey), only when enabled."""
        if not self.scram:
            return None
        row = await asyncio.to_thread(self._secrets, username)
        if row is None or row[0] is None:
            return None
        salt, iters, stored, server, _cram = row
        assert isinstance(salt, bytes) and isinstance(stored, bytes)
        assert isinstance(server, bytes) and isinstance(iters, int)
        return salt, iters, stored, server

    async def cram_secret(self, username: str) -> bytes | None:
        """The plaintext-equivalent secret for CRAM-MD5/APOP, only when enabled."""
        if not self.cram:
            return None
        row = await asyncio.to_thread(self._secrets, username)
        if row is None or not isinstance(row[4], bytes):
            return None
        return row[4]
