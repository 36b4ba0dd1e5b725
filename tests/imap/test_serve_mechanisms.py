"""`mailcore serve`'s IMAP listener offers the SASL mechanisms of ``[auth] mechanisms``."""

from __future__ import annotations

import base64
from pathlib import Path

from mailcore.app import MailServer
from mailcore.config import parse_config
from tests.imap.wire import Wire, close_all
from tests.serve.proc import free_port

USER = "alice@example.org"
PASSWORD = "secret pw"


async def _serve(root: Path, mechanisms: list[str]) -> tuple[MailServer, int]:
    port = free_port()
    cfg = parse_config(
        {
            "data_dir": str(root / "data"),
            "domains": ["example.org"],
            "listener": [{"protocol": "imap", "address": "127.0.0.1", "port": port, "tls": "none"}],
            "auth": {"mechanisms": mechanisms, "allow_plaintext": True},
        }
    )
    server = MailServer(cfg)
    await server.start()
    server.accounts.add_user(USER, PASSWORD)
    return server, port


def _auth_caps(greeting: bytes) -> list[bytes]:
    caps = greeting.split(b"[CAPABILITY ", 1)[1].split(b"]", 1)[0].split()
    return [c for c in caps if c.startswith(b"AUTH=")]


async def test_imap_offers_exactly_the_configured_mechanisms(tmp_path: Path) -> None:
    server, port = await _serve(tmp_path, ["PLAIN", "LOGIN"])
    try:
        w = await Wire.open(port)
        assert _auth_caps(w.greeting) == [b"AUTH=PLAIN", b"AUTH=LOGIN"]
        caps = await w.cmd(b"a CAPABILITY")
        assert b"SCRAM" not in caps and b"CRAM" not in caps
        # A mechanism that is not configured is refused, not tried.
        out = await w.cmd(b"b AUTHENTICATE SCRAM-SHA-256 " + base64.b64encode(b"n,,n=x,r=abc"))
        assert out == b"b NO [CANNOT] Unsupported authentication mechanism\r\n"
        plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
        out = await w.cmd(b"c AUTHENTICATE PLAIN " + plain)
        assert out.startswith(b"c OK ")
    finally:
        await close_all()
        await server.close()


async def test_imap_offers_scram_when_configured(tmp_path: Path) -> None:
    server, port = await _serve(tmp_path, ["SCRAM-SHA-256", "PLAIN"])
    try:
        w = await Wire.open(port)
        assert _auth_caps(w.greeting) == [b"AUTH=SCRAM-SHA-256", b"AUTH=PLAIN"]
    finally:
        await close_all()
        await server.close()
