"""``mailcore serve`` end to end over TCP, as a subprocess, the way a user runs it."""

from __future__ import annotations

import email
import email.policy
import imaplib
import json
import poplib
import signal
import smtplib
import socket
import ssl
import urllib.request
from email.message import EmailMessage
from importlib.util import find_spec
from pathlib import Path

import pytest

from tests.serve.proc import Serve, free_port, mailcore, write_config

TEXT = "Hola Meandus:\n¿Cómo andan tus cosas?\n\n¡Nos vemos pronto!\n"
LISTENERS = [
    ("smtp", "starttls"),
    ("submission", "starttls"),
    ("pop3", "starttls"),
    ("pop3", "implicit"),
    ("imap", "starttls"),
    ("imap", "implicit"),
]


def _seed_message(subject: str = "Hola") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "webmaster@localhost"
    msg["To"] = "ann@localhost"
    msg["Subject"] = subject
    msg.set_content(TEXT, cte="quoted-printable")
    return msg


def _tls(data: Path) -> ssl.SSLContext:
    # The self-signed certificate the server made on first start is the trust anchor.
    return ssl.create_default_context(cafile=str(data / "tls-cert.pem"))


def _add_user(config: Path, address: str, password: str) -> None:
    result = mailcore(
        "user", "add", address, "--config", str(config), "--password-stdin", stdin=password + "\n"
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("loop", ["auto", "asyncio"])
def test_submit_read_restart(tmp_path: Path, loop: str) -> None:
    """The whole round trip, on the default event loop (uvloop when installed) and on asyncio's."""
    data = tmp_path / "data"
    config = tmp_path / "mailcore.toml"
    write_config(config, data, LISTENERS)
    server = Serve("--config", str(config), "--event-loop", loop)
    try:
        ports = server.wait_ready()
        assert {"smtp", "submission", "pop3", "pop3s"} <= set(ports)
        summary = "".join(server.stdout)
        expected = "uvloop" if loop == "auto" and find_spec("uvloop") else "asyncio"
        assert f", event loop {expected}\n" in summary
        assert f"mailcore user add you@localhost --data {data}" in summary
        assert oct((data / "tls-key.pem").stat().st_mode & 0o777) == "0o600"
        assert oct(data.stat().st_mode & 0o777) == "0o700"
        # `user add --config` finds the data directory through the config file.
        _add_user(config, "ann@localhost", "s3cret pass")
        ctx = _tls(data)

        with smtplib.SMTP("localhost", ports["submission"], local_hostname="machine1.test") as s:
            s.ehlo()
            assert s.has_extn("starttls") and not s.has_extn("auth")
            s.starttls(context=ctx)
            s.ehlo()
            assert "PLAIN" in s.esmtp_features["auth"]
            # RFC 6409 / RFC 4954: no MAIL before AUTH on submission.
            assert s.mail("webmaster@localhost") == (530, b"5.7.0 Authentication required")
            s.rset()
            with pytest.raises(smtplib.SMTPAuthenticationError):
                s.login("ann@localhost", "wrong")
            s.login("ann@localhost", "s3cret pass")
            assert s.send_message(_seed_message()) == {}
            assert s.send_message(_seed_message("second")) == {}

        # The MX-style listener: local users only, no relaying, no AUTH needed.
        with smtplib.SMTP("localhost", ports["smtp"]) as s:
            s.ehlo()
            s.mail("someone@remote.example")
            assert s.rcpt("tittom@localhost") == (550, b"5.1.1 No such user here")
            assert s.rcpt("meandus@meandus.net") == (554, b"5.7.1 Relay access denied")
            assert s.rcpt("ANN@localhost")[0] == 250
            code, reply = s.data(_seed_message("via MX").as_bytes(policy=email.policy.SMTP))
            assert code == 250 and reply.startswith(b"2.0.0 Ok: queued as ")
            queue_id = reply.split()[-1].decode()
        line = server.wait_log(queue_id)
        assert "from=<someone@remote.example>" in line and "to=<ANN@localhost>" in line
        assert "result=delivered" in line and "size=" in line and "delay=" in line

        # POP3 over implicit TLS: the seed's USER/PASS/STAT/TOP session.
        pop = poplib.POP3_SSL("localhost", ports["pop3s"], context=ctx)
        pop.user("ann@localhost")
        pop.pass_("s3cret pass")
        count, _size = pop.stat()
        assert count == 3
        _, lines, _ = pop.top(1, 5)
        top = b"\r\n".join(lines)
        assert top.startswith(b"Delivered-To: ann@localhost\r\nReceived: from machine1.test")
        assert b"Subject: Hola" in top
        _, lines, _ = pop.retr(1)
        parsed = email.message_from_bytes(b"\r\n".join([*lines, b""]), policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        body = parsed.get_body()
        assert body is not None and body.get_content().replace("\r\n", "\n") == TEXT
        uidls = pop.uidl()[1]
        pop.dele(2)
        pop.quit()

        # Plain POP3 with STLS sees the deletion.
        plain = poplib.POP3("localhost", ports["pop3"])
        plain.stls(context=ctx)
        plain.user("ann@localhost")
        plain.pass_("s3cret pass")
        assert plain.stat()[0] == 2
        kept = plain.uidl()[1]
        plain.quit()
        assert kept == [uidls[0], b"2 " + uidls[2].split()[1]]

        # IMAP with STARTTLS sees the same two messages and sets flags.
        imap = imaplib.IMAP4("localhost", ports["imap"])
        imap.starttls(ssl_context=ctx)
        imap.login("ann@localhost", "s3cret pass")
        assert imap.select("INBOX") == ("OK", [b"2"])
        typ, fetched = imap.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK"
        subjects = [part[1] for part in fetched if isinstance(part, tuple)]
        assert subjects == [b"Subject: Hola\r\n\r\n", b"Subject: via MX\r\n\r\n"]
        assert imap.store("1", "+FLAGS", "(\\Flagged $Important)")[0] == "OK"
        imap.logout()

        assert server.stop() == 0
        assert "stopped" in server.stderr[-1]
    finally:
        server.kill()

    # Start again on the same data: the messages (and the deletion) are still there.
    server = Serve("--config", str(config), "--event-loop", loop)
    try:
        ports = server.wait_ready()
        pop = poplib.POP3_SSL("localhost", ports["pop3s"], context=_tls(data))
        pop.user("ann@localhost")
        pop.pass_("s3cret pass")
        assert pop.stat()[0] == 2
        assert pop.uidl()[1] == kept
        pop.quit()
        # The flags set over IMAP survived the restart (read over implicit TLS).
        imap = imaplib.IMAP4_SSL("localhost", ports["imaps"], ssl_context=_tls(data))
        imap.login("ann@localhost", "s3cret pass")
        imap.select("INBOX", readonly=True)
        typ, flags = imap.fetch("1:*", "(FLAGS)")
        first, second = (line for line in flags if isinstance(line, bytes))
        assert typ == "OK" and b"\\Flagged" in first and b"$Important" in first
        assert b"\\Flagged" not in second
        imap.logout()
        assert server.stop() == 0
    finally:
        server.kill()


def test_json_logs_and_metrics(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "mailcore.toml"
    write_config(
        config,
        data,
        [("smtp", "none"), ("submission", "starttls"), ("pop3", "implicit"), ("imap", "implicit")],
    )
    metrics_port = free_port()
    _add_user(config, "ann@localhost", "pw")
    server = Serve(
        "--config", str(config), "--log-format", "json", "--metrics", f"127.0.0.1:{metrics_port}"
    )
    try:
        ports = server.wait_ready()
        with smtplib.SMTP("localhost", ports["smtp"]) as s:
            assert (
                s.sendmail("a@remote.example", ["ann@localhost"], b"Subject: x\r\n\r\nhi\r\n") == {}
            )
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                s.sendmail("a@remote.example", ["bob@localhost"], b"Subject: x\r\n\r\nhi\r\n")
        with smtplib.SMTP("localhost", ports["submission"]) as s:
            s.starttls(context=_tls(data))
            with pytest.raises(smtplib.SMTPAuthenticationError):
                s.login("ann@localhost", "nope")
        pop = poplib.POP3_SSL("localhost", ports["pop3s"], context=_tls(data))
        pop.user("ann@localhost")
        with pytest.raises(poplib.error_proto):
            pop.pass_("wrong")
        pop.close()
        imap = imaplib.IMAP4_SSL("localhost", ports["imaps"], ssl_context=_tls(data))
        with pytest.raises(imaplib.IMAP4.error):
            imap.login("ann@localhost", "wrong")
        imap.logout()
        server.wait_log('"protocol": "pop3", "event": "disconnect"')
        server.wait_log('"protocol": "imap", "event": "disconnect"')
        records = [json.loads(line) for line in server.stderr]
        message = next(r for r in records if r.get("event") == "message")
        assert message["to"] == "<ann@localhost>" and message["from"] == "<a@remote.example>"
        assert message["result"] == "delivered" and message["reply"] == "250 2.0.0"
        assert message["size"] > 0 and message["delay"] >= 0 and len(message["queue_id"]) == 12
        assert {"connect", "disconnect", "reject"} <= {r.get("event") for r in records}
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        assert 'mailcore_messages_accepted_total{protocol="smtp"} 1.0' in text
        assert 'mailcore_messages_delivered_total{result="delivered"} 1.0' in text
        assert 'mailcore_messages_refused_total{protocol="smtp",reason="550 5.1.1"} 1.0' in text
        assert 'mailcore_connections_total{protocol="smtp"} 1.0' in text
        # smtplib tries PLAIN, then LOGIN: two failed logins.
        assert 'mailcore_auth_failures_total{protocol="submission"} 2.0' in text
        assert 'mailcore_delivery_seconds_count{protocol="smtp"} 1.0' in text
        assert 'mailcore_connections_total{protocol="pop3"} 1.0' in text
        assert 'mailcore_auth_failures_total{protocol="pop3"} 1.0' in text
        assert 'mailcore_sessions{protocol="pop3"} 0.0' in text
        assert 'mailcore_connections_total{protocol="imap"} 1.0' in text
        assert 'mailcore_auth_failures_total{protocol="imap"} 1.0' in text
        assert 'mailcore_sessions{protocol="imap"} 0.0' in text
        assert "mailcore_queue_size 0.0" in text
        assert server.stop() == 0
    finally:
        server.kill()


def test_sigterm_waits_for_a_message_in_flight(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "mailcore.toml"
    write_config(config, data, [("smtp", "none")])
    _add_user(config, "ann@localhost", "pw")
    server = Serve("--config", str(config))
    try:
        ports = server.wait_ready()
        s = smtplib.SMTP("localhost", ports["smtp"])
        s.ehlo()
        s.mail("a@remote.example")
        s.rcpt("ann@localhost")
        s.putcmd("DATA")
        assert s.getreply()[0] == 354
        s.send(b"Subject: in flight\r\n\r\n" + (b"x" * 76 + b"\r\n") * 1300)
        # SIGTERM arrives mid-body; a new connection is then refused with 421.
        server.signal(signal.SIGTERM)
        server.wait_log("shutting down")
        late = smtplib.SMTP()
        assert late.connect("localhost", ports["smtp"])[0] == 421
        late.close()
        s.send(b".\r\n")
        code, _ = s.getreply()
        s.close()
        assert server.stop() == 0
        # The transaction under way was allowed to finish, and its message is stored.
        assert code == 250
        reindex = mailcore("store", "reindex", "--config", str(config))
        assert reindex.returncode == 0 and reindex.stdout.strip() == "indexed 1 messages"
    finally:
        server.kill()


def test_lmtp_and_pop2_listeners(tmp_path: Path) -> None:
    data = tmp_path / "data"
    config = tmp_path / "mailcore.toml"
    ports = write_config(config, data, [("lmtp", "none")])
    _add_user(config, "ann@localhost", "pw")
    pop2_port = free_port()
    server = Serve("--config", str(config), "--pop2", f"127.0.0.1:{pop2_port}")
    try:
        printed = server.wait_ready()
        assert printed["lmtp"] == ports["lmtp"] and printed["pop2"] == pop2_port
        # LMTP (RFC 2033): one reply per accepted recipient after the dot.
        with smtplib.LMTP("localhost", ports["lmtp"]) as lmtp:
            refused = lmtp.sendmail(
                "a@remote.example",
                ["ann@localhost", "nobody@localhost"],
                b"Subject: via LMTP\r\n\r\nhi\r\n",
            )
        assert refused == {"nobody@localhost": (550, b"5.1.1 No such user here")}
        # POP2 (RFC 937), asked for with --pop2: HELO user password.
        with socket.create_connection(("127.0.0.1", pop2_port), timeout=10) as sock:
            reader = sock.makefile("rb")
            assert reader.readline().startswith(b"+ POP2 ")
            sock.sendall(b"HELO ann@localhost pw\r\n")
            assert reader.readline() == b"#1 messages in folder\r\n"
            sock.sendall(b"QUIT\r\n")
            reader.close()
        assert server.stop() == 0
    finally:
        server.kill()
