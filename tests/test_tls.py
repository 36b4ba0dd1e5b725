"""Self-signed first-start certificates and TLS context rules."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest

from mailcore.tls import ReloadableContext, ensure_self_signed, server_context


def test_self_signed_pair_is_private_and_usable(tmp_path: Path) -> None:
    cert, key = ensure_self_signed(tmp_path / "tls", "mail.example.test")
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(cert.stat().st_mode) == 0o600
    ctx = server_context(cert, key)
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    # A second call keeps the same files instead of minting a new identity.
    before = cert.read_bytes()
    assert ensure_self_signed(tmp_path / "tls", "mail.example.test") == (cert, key)
    assert cert.read_bytes() == before


def test_reload_picks_up_new_files_and_keeps_old_context_on_error(tmp_path: Path) -> None:
    cert, key = ensure_self_signed(tmp_path, "localhost")
    holder = ReloadableContext(cert, key)
    first = holder.context
    cert.unlink()
    key.unlink()
    ensure_self_signed(tmp_path, "localhost")
    holder.reload()
    assert holder.context is not first
    current = holder.context
    cert.write_text("not a certificate")
    with pytest.raises(ssl.SSLError):
        holder.reload()
    assert holder.context is current
