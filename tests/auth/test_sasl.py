"""SASL step machines: RFC vectors, client against server, and hostile input."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailcore.auth import sasl
from mailcore.auth.sasl import (
    Challenge,
    CheckPassword,
    ClientMechanism,
    CredentialSource,
    Failure,
    NeedCramSecret,
    NeedScramSecrets,
    SASLStep,
    ServerMechanism,
    Success,
    client_mechanism,
    saslprep,
    scram_secrets_for,
    server_mechanism,
)
from mailcore.errors import AuthError

REALM = "mx.example.org"
SALT = b"0123456789abcdef"


class Accounts:
    """An in-memory CredentialSource: the real one lives in auth/accounts.py."""

    def __init__(self, users: dict[str, str], *, cram: bool = True) -> None:
        self.users = users
        self.cram = cram
        self.asked: list[str] = []

    async def verify_password(self, username: str, password: str) -> str | None:
        self.asked.append(username)
        stored = self.users.get(username.lower())
        if stored is not None and hmac.compare_digest(stored.encode(), password.encode()):
            return username.lower()
        return None

    async def scram_secrets(self, username: str) -> tuple[bytes, int, bytes, bytes] | None:
        self.asked.append(username)
        stored = self.users.get(username.lower())
        if stored is None:
            return None
        return scram_secrets_for(stored, salt=SALT, iterations=4096)

    async def cram_secret(self, username: str) -> bytes | None:
        self.asked.append(username)
        stored = self.users.get(username.lower())
        if stored is None or not self.cram:
            return None
        return stored.encode()


async def resolve(mech: ServerMechanism, step: SASLStep, creds: CredentialSource) -> SASLStep:
    """Answer the credential questions the way a protocol adapter does."""
    while True:
        if isinstance(step, CheckPassword):
            step = mech.password_result(await creds.verify_password(step.authcid, step.password))
        elif isinstance(step, NeedScramSecrets):
            step = mech.provide_secrets(await creds.scram_secrets(step.authcid))
        elif isinstance(step, NeedCramSecret):
            step = mech.provide_secret(await creds.cram_secret(step.username))
        else:
            return step


async def run_exchange(
    server: ServerMechanism,
    client: ClientMechanism,
    creds: CredentialSource,
    *,
    use_initial: bool = True,
) -> tuple[SASLStep, list[bytes]]:
    """Drive client against server; return the last step and the client's messages."""
    sent: list[bytes] = []
    initial = client.initial() if use_initial else None
    if initial is not None:
        sent.append(initial)
    step = await resolve(server, server.start(initial), creds)
    rounds = 0
    while isinstance(step, Challenge):
        rounds += 1
        assert rounds < 10
        answer = client.respond(step.data)
        sent.append(answer)
        step = await resolve(server, server.step(answer), creds)
    return step, sent


MECHS = ["PLAIN", "LOGIN", "SCRAM-SHA-256", "CRAM-MD5"]
USERS = {"alice": "correct horse", "bob": "pâsswörd ünïcode"}


@pytest.mark.parametrize("name", MECHS)
@pytest.mark.parametrize("use_initial", [True, False])
@pytest.mark.parametrize("user", ["alice", "bob"])
async def test_client_against_server_succeeds(name: str, use_initial: bool, user: str) -> None:
    server = server_mechanism(name, realm_host=REALM)
    client = client_mechanism(name, user, USERS[user])
    step, _ = await run_exchange(server, client, Accounts(USERS), use_initial=use_initial)
    assert isinstance(step, Success)
    assert step.account == user
    assert server.done
    if name == "SCRAM-SHA-256":
        assert step.final is not None
        assert client.verify_final(step.final)
    else:
        assert step.final is None


@pytest.mark.parametrize("name", MECHS)
async def test_wrong_password_and_unknown_user_fail_alike(name: str) -> None:
    creds = Accounts(USERS)
    wrong, _ = await run_exchange(
        server_mechanism(name, realm_host=REALM), client_mechanism(name, "alice", "nope"), creds
    )
    unknown, _ = await run_exchange(
        server_mechanism(name, realm_host=REALM),
        client_mechanism(name, "mallory", "correct horse"),
        creds,
    )
    assert isinstance(wrong, Failure)
    assert wrong == unknown


async def test_scram_unknown_user_gets_a_stable_salt() -> None:
    # A salt that changed per attempt would tell an attacker the user does not exist.
    salts = []
    for _ in range(2):
        server = server_mechanism("SCRAM-SHA-256", realm_host=REALM)
        client = client_mechanism("SCRAM-SHA-256", "mallory", "x")
        first = client.initial()
        assert first is not None
        step = await resolve(server, server.start(first), Accounts(USERS))
        assert isinstance(step, Challenge)
        salts.append(dict(p.split(b"=", 1) for p in step.data.split(b","))[b"s"])
        assert b",i=4096" in step.data
    assert salts[0] == salts[1]


async def test_cram_md5_disabled_fails_like_a_wrong_password() -> None:
    step, _ = await run_exchange(
        server_mechanism("CRAM-MD5", realm_host=REALM),
        client_mechanism("CRAM-MD5", "alice", "correct horse"),
        Accounts(USERS, cram=False),
    )
    assert step == Failure("authentication failed")


# ---------------------------------------------------------------- vectors ---


def test_rfc7677_scram_sha256_vector() -> None:
    # RFC 7677 section 3: user "user", password "pencil".
    client = client_mechanism(
        "SCRAM-SHA-256", "user", "pencil", nonce=lambda: b"rOprNGfwEbeRWgbNEkqO"
    )
    server = server_mechanism(
        "SCRAM-SHA-256", realm_host=REALM, nonce=lambda: b"%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    )
    client_first = client.initial()
    assert client_first == b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
    step = server.start(client_first)
    assert step == NeedScramSecrets("user")
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    step = server.provide_secrets(scram_secrets_for("pencil", salt=salt, iterations=4096))
    server_first = (
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    )
    assert step == Challenge(server_first)
    client_final = client.respond(server_first)
    assert client_final == (
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    step = server.step(client_final)
    assert step == Success("user", "", b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
    assert client.verify_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")


def test_rfc2195_cram_md5_vector() -> None:
    server = server_mechanism(
        "CRAM-MD5", realm_host="postoffice.reston.mci.net", nonce=lambda: b"1896.697170952"
    )
    step = server.start(None)
    assert step == Challenge(b"<1896.697170952@postoffice.reston.mci.net>")
    client = client_mechanism("CRAM-MD5", "tim", "tanstaaftanstaaf")
    assert client.initial() is None
    answer = client.respond(step.data)
    assert answer == b"tim b913a602c7eda7a495b4e6e7334d3890"
    assert server.step(answer) == NeedCramSecret("tim")
    assert server.provide_secret(b"tanstaaftanstaaf") == Success("tim", "", None)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # RFC 4616 section 4 examples.
        (b"\x00tim\x00tanstaaftanstaaf", CheckPassword("tim", "tanstaaftanstaaf", "")),
        (b"Ursel\x00Kurt\x00xipj3plmq", CheckPassword("Kurt", "xipj3plmq", "Ursel")),
    ],
)
def test_rfc4616_plain_examples(message: bytes, expected: CheckPassword) -> None:
    assert server_mechanism("PLAIN", realm_host=REALM).start(message) == expected


def test_plain_authzid_must_name_the_account() -> None:
    mech = server_mechanism("PLAIN", realm_host=REALM)
    mech.start(b"Ursel\x00Kurt\x00xipj3plmq")
    assert isinstance(mech.password_result("kurt"), Failure)
    mech = server_mechanism("PLAIN", realm_host=REALM)
    mech.start(b"kurt\x00Kurt\x00xipj3plmq")
    assert mech.password_result("kurt") == Success("kurt", "kurt", None)


def test_plain_client_messages() -> None:
    client = client_mechanism("PLAIN", "Kurt", "xipj3plmq", authzid="Ursel")
    assert client.initial() == b"Ursel\x00Kurt\x00xipj3plmq"
    assert client.respond(b"") == b"Ursel\x00Kurt\x00xipj3plmq"
    assert client.verify_final(b"anything")


def test_login_server_prompts_and_initial_username() -> None:
    mech = server_mechanism("LOGIN", realm_host=REALM)
    assert mech.start(None) == Challenge(b"Username:")
    assert mech.step(b"alice") == Challenge(b"Password:")
    assert mech.step(b"secret") == CheckPassword("alice", "secret", "")
    assert mech.password_result("alice") == Success("alice", "", None)
    mech = server_mechanism("LOGIN", realm_host=REALM)
    assert mech.start(b"alice") == Challenge(b"Password:")


def test_login_client_follows_the_prompt_words() -> None:
    client = client_mechanism("LOGIN", "alice", "secret")
    assert client.initial() is None
    assert client.respond(b"Password:") == b"secret"
    assert client.respond(b"User Name") == b"alice"
    client = client_mechanism("LOGIN", "alice", "secret")
    assert client.respond(b"who?") == b"alice"
    assert client.respond(b"and?") == b"secret"
    with pytest.raises(AuthError):
        client.respond(b"more?")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # RFC 4013 section 3 examples.
        ("I\u00adX", "IX"),
        ("user", "user"),
        ("USER", "USER"),
        ("\u00aa", "a"),
        ("\u2168", "IX"),
        ("a\u00a0b", "a b"),
    ],
)
def test_saslprep_rfc4013_examples(text: str, expected: str) -> None:
    assert saslprep(text) == expected


@pytest.mark.parametrize("text", ["\u0007", "\u0627\u0031", "a\u0000b", "\ud800"])
def test_saslprep_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="SASLprep"):
        saslprep(text)


def test_scram_password_is_saslprepped() -> None:
    # U+00AD is mapped to nothing, so both passwords give the same keys.
    assert scram_secrets_for("pen\u00adcil", salt=SALT, iterations=4096) == scram_secrets_for(
        "pencil", salt=SALT, iterations=4096
    )


def test_scram_secrets_for_matches_rfc5802_definition() -> None:
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", SALT, 4096)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    assert scram_secrets_for("pencil", salt=SALT, iterations=4096) == (
        SALT,
        4096,
        hashlib.sha256(client_key).digest(),
        hmac.new(salted, b"Server Key", hashlib.sha256).digest(),
    )
    with pytest.raises(ValueError, match="iterations"):
        scram_secrets_for("pencil", salt=SALT, iterations=0)


# ------------------------------------------------------------------ SCRAM ---


def scram_server_first(client_first: bytes) -> tuple[ServerMechanism, bytes]:
    server = server_mechanism("SCRAM-SHA-256", realm_host=REALM)
    step = server.start(client_first)
    assert isinstance(step, NeedScramSecrets)
    step = server.provide_secrets(scram_secrets_for("pencil", salt=SALT, iterations=4096))
    assert isinstance(step, Challenge)
    return server, step.data


def reference_client_final(
    gs2: bytes, bare: bytes, server_first: bytes, password: str, extra: bytes = b""
) -> bytes:
    """RFC 5802 section 3, written out independently of the module under test."""
    attrs = dict(item.split(b"=", 1) for item in server_first.split(b","))
    salted = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), base64.b64decode(attrs[b"s"]), int(attrs[b"i"])
    )
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = b"c=" + base64.b64encode(gs2) + b",r=" + attrs[b"r"] + extra
    auth_message = bare + b"," + server_first + b"," + without_proof
    signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
    return without_proof + b",p=" + base64.b64encode(proof)


@pytest.mark.parametrize("gs2", [b"n,,", b"y,,", b"n,a=user,", b"y,a=user,"])
def test_scram_accepts_n_and_y_gs2_flags(gs2: bytes) -> None:
    # "y": the client supports channel binding but thinks the server does
    # not; true here, since SCRAM-SHA-256-PLUS is never offered.
    bare = b"n=user,r=clientnonce"
    server, server_first = scram_server_first(gs2 + bare)
    step = server.step(reference_client_final(gs2, bare, server_first, "pencil"))
    assert isinstance(step, Success)
    assert step.authzid == ("user" if b"a=" in gs2 else "")


def test_scram_extensions_in_client_messages_are_ignored() -> None:
    bare = b"n=user,r=clientnonce,x=ext"
    server, server_first = scram_server_first(b"n,," + bare)
    # An extension between the nonce and the proof is part of AuthMessage.
    final = reference_client_final(b"n,,", bare, server_first, "pencil", extra=b",y=ext")
    assert b",y=ext,p=" in final
    assert isinstance(server.step(final), Success)


def test_scram_refuses_channel_binding_request() -> None:
    mech = server_mechanism("SCRAM-SHA-256", realm_host=REALM)
    step = mech.start(b"p=tls-unique,,n=user,r=abc")
    assert step == Failure("channel binding is not supported")


def test_scram_gs2_header_mismatch_fails() -> None:
    # The client said "y" but the final message claims "n": a downgrade.
    client = client_mechanism("SCRAM-SHA-256", "user", "pencil")
    first = client.initial()
    assert first is not None
    server, server_first = scram_server_first(b"y" + first[1:])
    step = server.step(client.respond(server_first))
    assert step == Failure("channel binding data does not match")


def test_scram_tampered_proof_and_nonce_fail() -> None:
    client = client_mechanism("SCRAM-SHA-256", "user", "pencil")
    first = client.initial()
    assert first is not None
    server, server_first = scram_server_first(first)
    final = client.respond(server_first)
    proof = base64.b64decode(final.rsplit(b"p=", 1)[1])
    bad = final.rsplit(b"p=", 1)[0] + b"p=" + base64.b64encode(bytes([proof[0] ^ 1]) + proof[1:])
    assert server.step(bad) == Failure("authentication failed")
    server, server_first = scram_server_first(first)
    final = client_mechanism("SCRAM-SHA-256", "user", "pencil").respond(b"")
    assert final.startswith(b"n,,n=user,r=")


def test_scram_nonce_replay_fails() -> None:
    client = client_mechanism("SCRAM-SHA-256", "user", "pencil")
    first = client.initial()
    assert first is not None
    _, server_first = scram_server_first(first)
    final = client.respond(server_first)
    # The same final message against a fresh server (new server nonce) fails.
    server2, _ = scram_server_first(first)
    assert server2.step(final) == Failure("SCRAM nonce does not match")


def test_scram_client_verifies_server_signature() -> None:
    client = client_mechanism("SCRAM-SHA-256", "user", "pencil")
    first = client.initial()
    assert first is not None
    server, server_first = scram_server_first(first)
    step = server.step(client.respond(server_first))
    assert isinstance(step, Success) and step.final is not None
    assert client.verify_final(step.final)
    forged = b"v=" + base64.b64encode(bytes(32))
    assert not client.verify_final(forged)
    assert not client.verify_final(b"e=invalid-proof")
    assert not client.verify_final(b"v=!!!")
    # Before any exchange there is nothing to verify against.
    assert not client_mechanism("SCRAM-SHA-256", "user", "pencil").verify_final(step.final)


def test_scram_escaped_username_and_authzid() -> None:
    client = client_mechanism("SCRAM-SHA-256", "a,b=c", "pencil", authzid="a,b=c")
    first = client.initial()
    assert first is not None
    assert first.startswith(b"n,a=a=2Cb=3Dc,n=a=2Cb=3Dc,r=")
    server = server_mechanism("SCRAM-SHA-256", realm_host=REALM)
    assert server.start(first) == NeedScramSecrets("a,b=c")
    step = server.provide_secrets(scram_secrets_for("pencil", salt=SALT, iterations=4096))
    assert isinstance(step, Challenge)
    result = server.step(client.respond(step.data))
    assert isinstance(result, Success)
    assert (result.account, result.authzid) == ("a,b=c", "a,b=c")


@pytest.mark.parametrize(
    "server_first",
    [
        b"",
        b"garbage",
        b"r=other,s=QUJD,i=4096",  # nonce does not extend the client's
        b"s=QUJD,r=CNONCEx,i=4096",  # attributes out of order
        b"r=CNONCEx,s=!!!,i=4096",
        b"r=CNONCEx,s=,i=4096",
        b"r=CNONCEx,s=QUJD,i=0",
        b"r=CNONCEx,s=QUJD,i=99999999999",
        b"r=CNONCEx,s=QUJD,i=-5",
        b"r=CNONCE,s=QUJD,i=4096",  # no server part in the nonce
        b"m=ext,r=CNONCEx,s=QUJD,i=4096",
    ],
)
def test_scram_client_refuses_malformed_server_first(server_first: bytes) -> None:
    client = client_mechanism("SCRAM-SHA-256", "user", "pencil", nonce=lambda: b"CNONCE")
    client.initial()
    if server_first == b"":
        # An empty challenge means "send your first message now".
        assert client.respond(server_first) == b"n,,n=user,r=CNONCE"
        return
    with pytest.raises(AuthError):
        client.respond(server_first)


@pytest.mark.parametrize(
    "client_first",
    [
        b"",
        b"n,,",
        b"x,,n=user,r=abc",
        b"n,b=zz,n=user,r=abc",
        b"n,,m=ext,n=user,r=abc",
        b"n,,u=user,r=abc",
        b"n,,n=,r=abc",
        b"n,,n=us=ZZer,r=abc",
        b"n,,n=user,r=",
        b"n,,n=user,r=a\x01b",
        b"n,,n=user,x=abc",
        b"n,,n=user,r=abc,,",
        b"n,,n=\xff\xfe,r=abc",
        b"n,,n=a\x00b,r=abc",
    ],
)
def test_scram_server_fails_malformed_client_first(client_first: bytes) -> None:
    step = server_mechanism("SCRAM-SHA-256", realm_host=REALM).start(client_first)
    assert isinstance(step, Failure)


@pytest.mark.parametrize(
    "client_final",
    [
        b"",
        b"c=biws",
        b"c=biws,r=abc",
        b"r=abc,c=biws,p=AAAA",
        b"c=biws,r=NONCE,x=AAAA",
        b"c=!!!!,r=NONCE,p=AAAA",
        b"c=biws,r=NONCE,p=!!!!",
        b"c=biws,r=NONCE,p=AAAA",  # proof of the wrong length
    ],
)
def test_scram_server_fails_malformed_client_final(client_final: bytes) -> None:
    server, server_first = scram_server_first(b"n,,n=user,r=abc")
    nonce = server_first.split(b",")[0][2:]
    step = server.step(client_final.replace(b"NONCE", nonce))
    assert isinstance(step, Failure)
    assert server.done


# ---------------------------------------------------------- hostile input ---


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("PLAIN", b"no-nuls"),
        ("PLAIN", b"a\x00b"),
        ("PLAIN", b"a\x00b\x00c\x00d"),
        ("PLAIN", b"\x00\x00pw"),
        ("PLAIN", b"\x00user\x00"),
        ("PLAIN", b"\x00\xff\x00pw"),
        ("CRAM-MD5", b"x"),
        ("CRAM-MD5", b"tim B913A602C7EDA7A495B4E6E7334D3890"),
        ("CRAM-MD5", b"tim b913a602c7eda7a495b4e6e7334d389"),
        ("CRAM-MD5", b" b913a602c7eda7a495b4e6e7334d3890"),
        ("CRAM-MD5", b"\xff b913a602c7eda7a495b4e6e7334d3890"),
    ],
)
def test_malformed_responses_fail(name: str, data: bytes) -> None:
    mech = server_mechanism(name, realm_host=REALM)
    step = mech.start(None)
    assert isinstance(step, Challenge)
    assert isinstance(mech.step(data), Failure)
    assert mech.done


def test_login_malformed_responses_fail() -> None:
    for answers in ([b""], [b"\xff"], [b"alice", b""], [b"alice", b"a\x00b"]):
        mech = server_mechanism("LOGIN", realm_host=REALM)
        step: SASLStep = mech.start(None)
        for answer in answers:
            assert isinstance(step, Challenge)
            step = mech.step(answer)
        assert isinstance(step, Failure)


def test_cram_md5_refuses_an_initial_response() -> None:
    assert isinstance(server_mechanism("CRAM-MD5", realm_host=REALM).start(b"x"), Failure)


@pytest.mark.parametrize("name", MECHS)
def test_calls_out_of_order_fail_and_stay_failed(name: str) -> None:
    mech = server_mechanism(name, realm_host=REALM)
    assert isinstance(mech.password_result("alice"), Failure)
    assert isinstance(mech.provide_secrets(None), Failure)
    assert isinstance(mech.provide_secret(b"x"), Failure)
    mech = server_mechanism(name, realm_host=REALM)
    if name != "PLAIN":
        assert isinstance(
            mech.step(b"x") if name != "LOGIN" else mech.password_result(None), Failure
        )
    mech = server_mechanism(name, realm_host=REALM)
    mech.start(None)
    assert isinstance(mech.start(None), Failure)


@given(first=st.binary(max_size=200), second=st.binary(max_size=200), initial=st.booleans())
def test_random_input_never_raises(first: bytes, second: bytes, initial: bool) -> None:
    for name in MECHS:
        mech = server_mechanism(name, realm_host=REALM)
        steps = [mech.start(first if initial else None), mech.step(second), mech.step(first)]
        steps.append(mech.password_result(None))
        steps.append(mech.provide_secrets(scram_secrets_for("pw", salt=SALT, iterations=1)))
        steps.append(mech.provide_secret(b"secret"))
        steps.append(mech.step(second))
        assert not any(isinstance(s, Success) for s in steps)


def test_unknown_mechanism_names() -> None:
    with pytest.raises(ValueError, match="unknown SASL mechanism"):
        server_mechanism("GSSAPI", realm_host=REALM)
    with pytest.raises(ValueError, match="unknown SASL mechanism"):
        client_mechanism("XOAUTH2", "u", "p")
    assert server_mechanism("scram-sha-256", realm_host=REALM).name == "SCRAM-SHA-256"
    assert set(sasl.SERVER_MECHANISMS) == set(sasl.CLIENT_MECHANISMS) == set(MECHS)


def test_bad_nonce_source_is_refused() -> None:
    with pytest.raises(ValueError, match="nonce"):
        client_mechanism("SCRAM-SHA-256", "u", "p", nonce=lambda: b"a,b")
