"""SASL mechanisms as sans-IO step machines, for SMTP AUTH, POP3 AUTH and IMAP AUTHENTICATE.

Server side: :func:`server_mechanism` makes a :class:`ServerMechanism` for
PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login), SCRAM-SHA-256 (RFC 7677
on RFC 5802; channel binding is not supported, so only the "n" and "y" GS2
flags are accepted) and CRAM-MD5 (RFC 2195). The machine never touches a
socket, a clock or the account store: when it needs something it returns a
step that says so (:class:`CheckPassword`, :class:`NeedScramSecrets`,
:class:`NeedCramSecret`), the protocol adapter awaits the
:class:`CredentialSource` and hands the answer back. Challenges and responses
are raw bytes; base64 on the wire is the adapter's job.

Client side: :func:`client_mechanism` makes a :class:`ClientMechanism` for the
same four names; SCRAM checks the server's signature (:meth:`ClientMechanism.verify_final`).

Nothing in here raises on what a peer sends to a server machine: malformed
input gives :class:`Failure`. Client machines raise :class:`mailcore.errors.AuthError`
on a malformed server challenge, so the caller can cancel the exchange.
Secrets are compared with :func:`hmac.compare_digest`, and an unknown user
walks the same path as a wrong password (SCRAM answers with a fake salt that
stays the same for the same name), so the replies never tell them apart.

Only the standard library is used: :mod:`hashlib`/:mod:`hmac` for the
primitives, :mod:`stringprep` for SASLprep (RFC 4013), :mod:`secrets` for
nonces (a parameter, so tests can fix it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import stringprep
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeAlias

from mailcore.errors import AuthError

__all__ = [
    "CLIENT_MECHANISMS",
    "SERVER_MECHANISMS",
    "Challenge",
    "CheckPassword",
    "ClientMechanism",
    "CredentialSource",
    "Failure",
    "NeedCramSecret",
    "NeedScramSecrets",
    "SASLStep",
    "ServerMechanism",
    "Success",
    "client_mechanism",
    "saslprep",
    "scram_secrets_for",
    "server_mechanism",
]

SERVER_MECHANISMS = ("PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5")
"""Mechanism names :func:`server_mechanism` knows, strongest last is not implied."""

CLIENT_MECHANISMS = ("SCRAM-SHA-256", "PLAIN", "LOGIN", "CRAM-MD5")
"""Mechanism names :func:`client_mechanism` knows, in the order a client should prefer them."""

# The reason every credential failure carries, whatever went wrong, so that an
# unknown user and a wrong password read the same.
_BAD_CREDENTIALS = "authentication failed"

# RFC 7677 section 4: the iteration count SHOULD be at least 4096.
SCRAM_MIN_ITERATIONS = 4096
# A server that asks a client for more iterations than this is refused: each
# iteration is one HMAC, and ten million would hold the client for seconds.
SCRAM_MAX_ITERATIONS = 10_000_000

NonceSource = Callable[[], bytes]
"""A function returning a fresh random nonce: printable ASCII without "," (RFC 5802)."""


def _default_nonce() -> bytes:
    # 24 random bytes; the URL-safe alphabet is "printable" in RFC 5802's
    # sense and is atext, so it fits a CRAM-MD5 msg-id too.
    return secrets.token_urlsafe(24).encode("ascii")


# ------------------------------------------------------------------ steps ---


@dataclass(frozen=True, slots=True)
class Challenge:
    """Send ``data`` to the client, then call :meth:`ServerMechanism.step` with its answer."""

    data: bytes


@dataclass(frozen=True, slots=True)
class CheckPassword:
    """Verify the password, then call :meth:`ServerMechanism.password_result`."""

    authcid: str
    password: str
    authzid: str


@dataclass(frozen=True, slots=True)
class NeedScramSecrets:
    """Look up the SCRAM secrets, then call :meth:`ServerMechanism.provide_secrets`."""

    authcid: str


@dataclass(frozen=True, slots=True)
class NeedCramSecret:
    """Look up the CRAM-MD5 secret, then call :meth:`ServerMechanism.provide_secret`."""

    username: str


@dataclass(frozen=True, slots=True)
class Success:
    """Authenticated as ``account``; ``final`` (SCRAM server-final) goes to the client."""

    account: str
    authzid: str
    final: bytes | None


@dataclass(frozen=True, slots=True)
class Failure:
    """The exchange failed; the adapter answers with its protocol's failure reply."""

    reason: str


SASLStep: TypeAlias = (
    Challenge | CheckPassword | NeedScramSecrets | NeedCramSecret | Success | Failure
)
"""What a server mechanism asks its adapter to do next."""


class CredentialSource(Protocol):
    """Where server mechanisms' questions are answered (``mailcore.auth.accounts.Accounts``)."""

    async def verify_password(self, username: str, password: str) -> str | None:
        """Return the canonical account name if the password is right, else None."""
        ...

    async def scram_secrets(self, username: str) -> tuple[bytes, int, bytes, bytes] | None:
        """Return (salt, iterations, stored_key, server_key) for ``username``, or None."""
        ...

    async def cram_secret(self, username: str) -> bytes | None:
        """Return the plaintext-equivalent CRAM-MD5 secret, only if that is enabled."""
        ...


# --------------------------------------------------------------- SASLprep ---

# RFC 4013 section 2.3: the tables of output that SASLprep prohibits.
_PROHIBITED: tuple[Callable[[str], bool], ...] = (
    stringprep.in_table_c12,
    stringprep.in_table_c21,
    stringprep.in_table_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
)


def saslprep(text: str) -> str:
    """Prepare a user name or password with SASLprep (RFC 4013, "query" profile).

    Non-ASCII spaces become U+0020, characters mapped to nothing are removed,
    the result is NFKC-normalised; prohibited characters or bad bidirectional
    text raise :class:`ValueError`. Unassigned code points are allowed.
    """
    # RFC 4013 2.1: mapping.
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch for ch in text if not stringprep.in_table_b1(ch)
    )
    # RFC 4013 2.2: normalisation form KC.
    prepared = unicodedata.normalize("NFKC", mapped)
    if not prepared:
        return prepared
    # RFC 4013 2.3: prohibited output.
    for ch in prepared:
        if any(check(ch) for check in _PROHIBITED):
            raise ValueError(f"SASLprep: prohibited character U+{ord(ch):04X}")
    # RFC 3454 section 6: bidirectional characters.
    has_ral = any(stringprep.in_table_d1(ch) for ch in prepared)
    if has_ral:
        if any(stringprep.in_table_d2(ch) for ch in prepared):
            raise ValueError("SASLprep: both left-to-right and right-to-left characters")
        if not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1])):
            raise ValueError("SASLprep: right-to-left text must start and end right-to-left")
    return prepared


def _prep_password(password: str) -> bytes:
    # RFC 5802 says Normalize(password) is SASLprep. A password SASLprep
    # refuses (one with a control character, say) is used as it is rather
    # than made unusable: the server's stored keys and every mailcore client
    # go through this same function, so both sides agree.
    try:
        return saslprep(password).encode("utf-8")
    except ValueError:
        return password.encode("utf-8")


# ------------------------------------------------------------ SCRAM maths ---


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def _unb64(data: bytes) -> bytes | None:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def _scram_keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes, bytes]:
    # (ClientKey, StoredKey, ServerKey) per RFC 5802 section 3.
    salted = hashlib.pbkdf2_hmac("sha256", _prep_password(password), salt, iterations)
    client_key = _hmac(salted, b"Client Key")
    return client_key, _h(client_key), _hmac(salted, b"Server Key")


def scram_secrets_for(
    password: str, *, salt: bytes, iterations: int
) -> tuple[bytes, int, bytes, bytes]:
    """Return ``(salt, iterations, stored_key, server_key)`` for SCRAM-SHA-256.

    RFC 5802 section 3: SaltedPassword = Hi(Normalize(password), salt, i),
    ClientKey = HMAC(SaltedPassword, "Client Key"), StoredKey = H(ClientKey),
    ServerKey = HMAC(SaltedPassword, "Server Key"). The server keeps only
    these; they do not reveal the password but are enough to log in to this
    server, so they are as secret as a password hash.
    """
    if iterations < 1:
        raise ValueError("iterations must be at least 1")
    if not salt:
        raise ValueError("salt must not be empty")
    _, stored_key, server_key = _scram_keys(password, salt, iterations)
    return salt, iterations, stored_key, server_key


# RFC 5802 section 7:
#   saslname        = 1*(value-safe-char / "=2C" / "=3D")
#   value-safe-char = %x01-2B / %x2D-3C / %x3E-7F / UTF8-2 / UTF8-3 / UTF8-4
def _encode_saslname(name: str) -> bytes:
    return name.replace("=", "=3D").replace(",", "=2C").encode("utf-8")


def _decode_saslname(raw: bytes) -> str | None:
    if not raw or b"\x00" in raw:
        return None
    parts = raw.split(b"=")
    out = bytearray(parts[0])
    for part in parts[1:]:
        if part[:2] == b"2C":
            out += b","
        elif part[:2] == b"3D":
            out += b"="
        else:
            return None
        out += part[2:]
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        return None


#   printable = %x21-2B / %x2D-7E   ;; Printable ASCII except ","
def _is_printable_nonce(nonce: bytes) -> bool:
    return bool(nonce) and all(0x21 <= b <= 0x7E and b != 0x2C for b in nonce)


def _make_nonce(source: NonceSource) -> bytes:
    nonce = source()
    if not _is_printable_nonce(nonce):
        raise ValueError("a nonce must be printable ASCII without ','")
    return nonce


def _parse_attrs(data: bytes) -> list[tuple[bytes, bytes]] | None:
    # attr-val = ALPHA "=" value, separated by ","; None if any is malformed.
    out = []
    for item in data.split(b","):
        if len(item) < 2 or item[1:2] != b"=" or not item[:1].isalpha():
            return None
        out.append((item[:1], item[2:]))
    return out


# --------------------------------------------------------------- servers ---


class ServerMechanism:
    """The server half of one SASL exchange.

    Call :meth:`start` with the client's initial response (None if it sent
    none), then follow the steps it returns. A call that does not fit the
    current step returns :class:`Failure`; a finished mechanism stays finished.
    """

    name: str = ""

    def __init__(self) -> None:
        self._done = False

    def start(self, initial: bytes | None) -> SASLStep:
        """Begin the exchange with the client's initial response, if any."""
        return self._fail("unexpected start")

    def step(self, response: bytes) -> SASLStep:
        """Feed the client's answer to the last :class:`Challenge`."""
        return self._fail("unexpected response")

    def password_result(self, account: str | None) -> SASLStep:
        """Feed the outcome of :class:`CheckPassword` (the canonical account or None)."""
        return self._fail("unexpected password result")

    def provide_secrets(self, secrets: tuple[bytes, int, bytes, bytes] | None) -> SASLStep:
        """Feed the outcome of :class:`NeedScramSecrets` (None for an unknown user)."""
        return self._fail("unexpected SCRAM secrets")

    def provide_secret(self, secret: bytes | None) -> SASLStep:
        """Feed the outcome of :class:`NeedCramSecret` (None for an unknown user)."""
        return self._fail("unexpected CRAM-MD5 secret")

    @property
    def done(self) -> bool:
        """Whether the exchange has ended in :class:`Success` or :class:`Failure`."""
        return self._done

    def _fail(self, reason: str) -> Failure:
        self._done = True
        return Failure(reason)

    def _succeed(self, account: str, authzid: str, final: bytes | None = None) -> SASLStep:
        self._done = True
        return Success(account, authzid, final)

    def _authorize(self, account: str, authcid: str, authzid: str) -> SASLStep:
        # Acting for someone else is not supported: an authorisation identity
        # must name the account that authenticated.
        if authzid and authzid not in (account, authcid):
            return self._fail("not authorized to act as the requested identity")
        return self._succeed(account, authzid)


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


class _Plain(ServerMechanism):
    # RFC 4616 section 2:
    #   message = [authzid] UTF8NUL authcid UTF8NUL passwd
    #   authcid = 1*SAFE ; MUST accept up to 255 octets
    #   authzid = 1*SAFE ; MUST accept up to 255 octets
    #   passwd  = 1*SAFE ; MUST accept up to 255 octets
    #   SAFE    = UTF1 / UTF2 / UTF3 / UTF4 ; any UTF-8 encoded Unicode character except NUL
    name = "PLAIN"

    def __init__(self) -> None:
        super().__init__()
        self._state = "start"
        self._authcid = ""
        self._authzid = ""

    def start(self, initial: bytes | None) -> SASLStep:
        if self._state != "start":
            return self._fail("unexpected start")
        if initial is None:
            self._state = "wait"
            return Challenge(b"")
        return self._message(initial)

    def step(self, response: bytes) -> SASLStep:
        if self._state != "wait":
            return self._fail("unexpected response")
        return self._message(response)

    def _message(self, data: bytes) -> SASLStep:
        parts = data.split(b"\x00")
        if len(parts) != 3:
            return self._fail("malformed PLAIN message")
        fields = [_utf8(p) for p in parts]
        authzid, authcid, password = fields
        if authzid is None or authcid is None or password is None:
            return self._fail("PLAIN message is not UTF-8")
        if not authcid or not password:
            return self._fail("empty user name or password")
        self._state = "check"
        self._authcid, self._authzid = authcid, authzid
        return CheckPassword(authcid, password, authzid)

    def password_result(self, account: str | None) -> SASLStep:
        if self._state != "check":
            return self._fail("unexpected password result")
        self._state = "end"
        if account is None:
            return self._fail(_BAD_CREDENTIALS)
        return self._authorize(account, self._authcid, self._authzid)


class _Login(ServerMechanism):
    # draft-murchison-sasl-login-00: the server asks "Username:" then
    # "Password:"; the client answers each. Some clients put the user name in
    # the initial response, which the draft allows.
    name = "LOGIN"

    def __init__(self) -> None:
        super().__init__()
        self._state = "start"
        self._username = ""

    def start(self, initial: bytes | None) -> SASLStep:
        if self._state != "start":
            return self._fail("unexpected start")
        if initial is None:
            self._state = "username"
            return Challenge(b"Username:")
        self._state = "username"
        return self.step(initial)

    def step(self, response: bytes) -> SASLStep:
        text = _utf8(response)
        if text is None or "\x00" in text:
            return self._fail("LOGIN response is not UTF-8 text")
        if self._state == "username":
            if not text:
                return self._fail("empty user name")
            self._username = text
            self._state = "password"
            return Challenge(b"Password:")
        if self._state == "password":
            if not text:
                return self._fail("empty password")
            self._state = "check"
            return CheckPassword(self._username, text, "")
        return self._fail("unexpected response")

    def password_result(self, account: str | None) -> SASLStep:
        if self._state != "check":
            return self._fail("unexpected password result")
        self._state = "end"
        if account is None:
            return self._fail(_BAD_CREDENTIALS)
        return self._succeed(account, "")


# A key only this process knows, so the fake salt of an unknown user is the
# same on every attempt (a changing salt would give the user away) and
# cannot be predicted from outside.
_FAKE_SALT_KEY = secrets.token_bytes(32)


class _ScramSha256(ServerMechanism):
    # RFC 5802 section 7 (client messages):
    #   gs2-cbind-flag  = ("p=" cb-name) / "n" / "y"
    #   gs2-header      = gs2-cbind-flag "," [ authzid ] ","
    #   authzid         = "a=" saslname
    #   client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
    #   client-first-message = gs2-header client-first-message-bare
    #   client-final-message-without-proof = channel-binding "," nonce ["," extensions]
    #   client-final-message = client-final-message-without-proof "," proof
    #   channel-binding = "c=" base64 ; base64 of gs2-header (no cbind-data here)
    #   proof           = "p=" base64
    name = "SCRAM-SHA-256"

    def __init__(self, nonce: NonceSource) -> None:
        super().__init__()
        self._nonce_source = nonce
        self._state = "start"
        self._gs2_header = b""
        self._client_first_bare = b""
        self._username = ""
        self._authzid = ""
        self._nonce = b""
        self._server_first = b""
        self._secrets: tuple[bytes, int, bytes, bytes] | None = None
        self._known = False

    def start(self, initial: bytes | None) -> SASLStep:
        if self._state != "start":
            return self._fail("unexpected start")
        if initial is None:
            self._state = "client-first"
            return Challenge(b"")
        return self._client_first(initial)

    def step(self, response: bytes) -> SASLStep:
        if self._state == "client-first":
            return self._client_first(response)
        if self._state == "client-final":
            return self._client_final(response)
        return self._fail("unexpected response")

    def _client_first(self, data: bytes) -> SASLStep:
        fields = data.split(b",", 3)
        if len(fields) < 4:
            return self._fail("malformed SCRAM client-first message")
        flag, authz, user_attr, rest = fields
        if flag.startswith(b"p="):
            return self._fail("channel binding is not supported")
        if flag not in (b"n", b"y"):
            return self._fail("malformed GS2 header")
        authzid = ""
        if authz:
            if not authz.startswith(b"a="):
                return self._fail("malformed GS2 authzid")
            decoded = _decode_saslname(authz[2:])
            if decoded is None:
                return self._fail("malformed GS2 authzid")
            authzid = decoded
        if user_attr.startswith(b"m="):
            return self._fail("unsupported SCRAM mandatory extension")
        if not user_attr.startswith(b"n="):
            return self._fail("malformed SCRAM user name")
        username = _decode_saslname(user_attr[2:])
        if username is None:
            return self._fail("malformed SCRAM user name")
        nonce_attr = rest.split(b",", 1)[0]
        if not nonce_attr.startswith(b"r=") or not _is_printable_nonce(nonce_attr[2:]):
            return self._fail("malformed SCRAM nonce")
        if b"," in rest and _parse_attrs(rest.split(b",", 1)[1]) is None:
            return self._fail("malformed SCRAM extension")
        self._gs2_header = flag + b"," + authz + b","
        self._client_first_bare = user_attr + b"," + rest
        try:
            self._username = saslprep(username)
        except ValueError:
            return self._fail("user name refused by SASLprep")
        self._authzid = authzid
        self._nonce = nonce_attr[2:] + _make_nonce(self._nonce_source)
        self._state = "secrets"
        return NeedScramSecrets(self._username)

    def provide_secrets(self, secrets: tuple[bytes, int, bytes, bytes] | None) -> SASLStep:
        if self._state != "secrets":
            return self._fail("unexpected SCRAM secrets")
        if secrets is None:
            # Unknown user: go on with a stable fake salt and keys that no
            # proof can match, and fail at the proof like a wrong password.
            fake_salt = _hmac(_FAKE_SALT_KEY, self._username.encode("utf-8"))[:16]
            secrets = (fake_salt, SCRAM_MIN_ITERATIONS, _FAKE_SALT_KEY, _FAKE_SALT_KEY)
            self._known = False
        else:
            self._known = True
        salt, iterations = secrets[0], secrets[1]
        self._secrets = secrets
        self._server_first = (
            b"r=" + self._nonce + b",s=" + _b64(salt) + b",i=" + str(iterations).encode("ascii")
        )
        self._state = "client-final"
        return Challenge(self._server_first)

    def _client_final(self, data: bytes) -> SASLStep:
        self._state = "end"
        attrs = _parse_attrs(data)
        if attrs is None or len(attrs) < 3:
            return self._fail("malformed SCRAM client-final message")
        (c_key, c_val), (r_key, r_val) = attrs[0], attrs[1]
        p_key, p_val = attrs[-1]
        if c_key != b"c" or r_key != b"r" or p_key != b"p":
            return self._fail("malformed SCRAM client-final message")
        binding = _unb64(c_val)
        if binding is None or not hmac.compare_digest(binding, self._gs2_header):
            return self._fail("channel binding data does not match")
        if not hmac.compare_digest(r_val, self._nonce):
            return self._fail("SCRAM nonce does not match")
        proof = _unb64(p_val)
        if proof is None or len(proof) != hashlib.sha256().digest_size:
            return self._fail("malformed SCRAM proof")
        secrets_ = self._secrets
        if secrets_ is None:  # not reachable: the state machine set it
            return self._fail("unexpected response")
        _, _, stored_key, server_key = secrets_
        without_proof = data[: len(data) - len(p_val) - 3]
        auth_message = self._client_first_bare + b"," + self._server_first + b"," + without_proof
        client_signature = _hmac(stored_key, auth_message)
        client_key = _xor(proof, client_signature)
        good = hmac.compare_digest(_h(client_key), stored_key)
        if not (good and self._known):
            return self._fail(_BAD_CREDENTIALS)
        server_signature = _hmac(server_key, auth_message)
        step = self._authorize(self._username, self._username, self._authzid)
        if isinstance(step, Success):
            return Success(step.account, step.authzid, b"v=" + _b64(server_signature))
        return step


class _CramMd5(ServerMechanism):
    # RFC 2195 section 2: the server sends a msg-id style challenge
    # "<" unique "@" host ">"; the client answers
    # user SP 32 lowercase hex digits of HMAC-MD5(secret, challenge).
    name = "CRAM-MD5"

    def __init__(self, realm_host: str, nonce: NonceSource) -> None:
        super().__init__()
        self._challenge = b"<" + _make_nonce(nonce) + b"@" + realm_host.encode("utf-8") + b">"
        self._state = "start"
        self._username = ""
        self._digest = b""

    def start(self, initial: bytes | None) -> SASLStep:
        if self._state != "start":
            return self._fail("unexpected start")
        if initial:
            return self._fail("CRAM-MD5 takes no initial response")
        self._state = "response"
        return Challenge(self._challenge)

    def step(self, response: bytes) -> SASLStep:
        if self._state != "response":
            return self._fail("unexpected response")
        user, sep, digest = response.rpartition(b" ")
        name = _utf8(user)
        if not sep or name is None or not name or len(digest) != 32:
            return self._fail("malformed CRAM-MD5 response")
        if any(b not in b"0123456789abcdef" for b in digest):
            return self._fail("malformed CRAM-MD5 response")
        self._username, self._digest = name, digest
        self._state = "secret"
        return NeedCramSecret(name)

    def provide_secret(self, secret: bytes | None) -> SASLStep:
        if self._state != "secret":
            return self._fail("unexpected CRAM-MD5 secret")
        self._state = "end"
        # An unknown user costs the same HMAC as a known one.
        key = secret if secret is not None else _FAKE_SALT_KEY
        expected = hmac.new(key, self._challenge, hashlib.md5).hexdigest().encode("ascii")
        if not hmac.compare_digest(expected, self._digest) or secret is None:
            return self._fail(_BAD_CREDENTIALS)
        return self._succeed(self._username, "")


def server_mechanism(
    name: str, *, realm_host: str, nonce: NonceSource | None = None
) -> ServerMechanism:
    """Make the server half of mechanism ``name`` (case-insensitive).

    ``realm_host`` names the server in the CRAM-MD5 challenge; ``nonce``
    returns random bytes (default :func:`secrets.token_bytes`). An unknown
    name raises :class:`ValueError`; check against :data:`SERVER_MECHANISMS`.
    """
    source = nonce or _default_nonce
    upper = name.upper()
    if upper == "PLAIN":
        return _Plain()
    if upper == "LOGIN":
        return _Login()
    if upper == "SCRAM-SHA-256":
        return _ScramSha256(source)
    if upper == "CRAM-MD5":
        return _CramMd5(realm_host, source)
    raise ValueError(f"unknown SASL mechanism {name!r}")


# --------------------------------------------------------------- clients ---


class ClientMechanism:
    """The client half of one SASL exchange.

    Send :meth:`initial` with the AUTH command when it is not None; answer
    each server challenge with :meth:`respond`; when the server signals
    success with additional data, check it with :meth:`verify_final`.
    A malformed challenge raises :class:`mailcore.errors.AuthError`.
    """

    name: str = ""

    def __init__(self, username: str, password: str, authzid: str) -> None:
        self._username = username
        self._password = password
        self._authzid = authzid

    def initial(self) -> bytes | None:
        """Return the initial response, or None if the mechanism has none."""
        return None

    def respond(self, challenge: bytes) -> bytes:
        """Return the answer to a server challenge."""
        raise AuthError(f"{self.name} expects no challenge")

    def verify_final(self, data: bytes) -> bool:
        """Check the server's final data (SCRAM's signature); True for other mechanisms."""
        return True


class _ClientPlain(ClientMechanism):
    name = "PLAIN"

    def _message(self) -> bytes:
        return b"\x00".join(
            s.encode("utf-8") for s in (self._authzid, self._username, self._password)
        )

    def initial(self) -> bytes | None:
        return self._message()

    def respond(self, challenge: bytes) -> bytes:
        # A server that does not take initial responses sends an empty challenge.
        return self._message()


class _ClientLogin(ClientMechanism):
    name = "LOGIN"

    def __init__(self, username: str, password: str, authzid: str) -> None:
        super().__init__(username, password, authzid)
        self._answered = 0

    def respond(self, challenge: bytes) -> bytes:
        # Servers word the prompts differently ("Username:", "User Name"),
        # so the prompt decides only when it says which; otherwise the order does.
        prompt = challenge.lower()
        self._answered += 1
        if prompt.startswith(b"user"):
            return self._username.encode("utf-8")
        if prompt.startswith(b"pass"):
            return self._password.encode("utf-8")
        if self._answered == 1:
            return self._username.encode("utf-8")
        if self._answered == 2:
            return self._password.encode("utf-8")
        raise AuthError("LOGIN: unexpected third challenge")


class _ClientCramMd5(ClientMechanism):
    name = "CRAM-MD5"

    def respond(self, challenge: bytes) -> bytes:
        digest = hmac.new(self._password.encode("utf-8"), challenge, hashlib.md5).hexdigest()
        return self._username.encode("utf-8") + b" " + digest.encode("ascii")


class _ClientScramSha256(ClientMechanism):
    name = "SCRAM-SHA-256"

    def __init__(self, username: str, password: str, authzid: str, nonce: NonceSource) -> None:
        super().__init__(username, password, authzid)
        self._cnonce = _make_nonce(nonce)
        authz = b"a=" + _encode_saslname(authzid) if authzid else b""
        # "n": this client does not support channel binding.
        self._gs2_header = b"n," + authz + b","
        try:
            prepared = saslprep(username)
        except ValueError:
            prepared = username
        self._client_first_bare = b"n=" + _encode_saslname(prepared) + b",r=" + self._cnonce
        self._server_signature: bytes | None = None
        self._responded = False

    def initial(self) -> bytes | None:
        return self._gs2_header + self._client_first_bare

    def respond(self, challenge: bytes) -> bytes:
        if not challenge:
            # The server did not take the initial response: send it now.
            first = self.initial()
            if first is None:  # not reachable: SCRAM always has one
                raise AuthError("SCRAM: no client-first message")
            return first
        if self._responded:
            raise AuthError("SCRAM: unexpected challenge after client-final")
        self._responded = True
        attrs = _parse_attrs(challenge)
        if attrs is None or len(attrs) < 3:
            raise AuthError("SCRAM: malformed server-first message")
        if attrs[0][0] == b"m":
            raise AuthError("SCRAM: unsupported mandatory extension")
        (r_key, nonce), (s_key, salt_b64), (i_key, iter_text) = attrs[:3]
        if (r_key, s_key, i_key) != (b"r", b"s", b"i"):
            raise AuthError("SCRAM: malformed server-first message")
        if not nonce.startswith(self._cnonce) or len(nonce) <= len(self._cnonce):
            raise AuthError("SCRAM: server nonce does not extend ours")
        if not _is_printable_nonce(nonce):
            raise AuthError("SCRAM: malformed server nonce")
        salt = _unb64(salt_b64)
        if not salt:
            raise AuthError("SCRAM: malformed salt")
        if not iter_text.isdigit() or len(iter_text) > 9:
            raise AuthError("SCRAM: malformed iteration count")
        iterations = int(iter_text)
        if not 1 <= iterations <= SCRAM_MAX_ITERATIONS:
            raise AuthError(f"SCRAM: iteration count {iterations} refused")
        client_key, stored_key, server_key = _scram_keys(self._password, salt, iterations)
        without_proof = b"c=" + _b64(self._gs2_header) + b",r=" + nonce
        auth_message = self._client_first_bare + b"," + challenge + b"," + without_proof
        proof = _xor(client_key, _hmac(stored_key, auth_message))
        self._server_signature = _hmac(server_key, auth_message)
        return without_proof + b",p=" + _b64(proof)

    def verify_final(self, data: bytes) -> bool:
        expected = self._server_signature
        if expected is None or not data.startswith(b"v="):
            return False
        got = _unb64(data[2:].split(b",", 1)[0])
        return got is not None and hmac.compare_digest(got, expected)


def client_mechanism(
    name: str,
    username: str,
    password: str,
    *,
    authzid: str = "",
    nonce: NonceSource | None = None,
) -> ClientMechanism:
    """Make the client half of mechanism ``name`` (case-insensitive).

    ``nonce`` returns random bytes for the SCRAM client nonce (default
    :func:`secrets.token_bytes`). An unknown name raises :class:`ValueError`.
    """
    upper = name.upper()
    if upper == "PLAIN":
        return _ClientPlain(username, password, authzid)
    if upper == "LOGIN":
        return _ClientLogin(username, password, authzid)
    if upper == "CRAM-MD5":
        return _ClientCramMd5(username, password, authzid)
    if upper == "SCRAM-SHA-256":
        return _ClientScramSha256(username, password, authzid, nonce or _default_nonce)
    raise ValueError(f"unknown SASL mechanism {name!r}")
