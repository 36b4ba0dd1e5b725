"""What an operator sees: config errors, SIGHUP, a second server, ports that cannot be bound."""

from __future__ import annotations

import signal
import smtplib
import socket
import ssl
import tomllib
from pathlib import Path

import pytest
import trustme

from mailcore.cli import main
from tests.serve.proc import Serve, free_port, mailcore, write_config

BAD_CONFIGS = [
    (
        '[[listener]]\nprotocol = "smtp"\nport = 70000',
        "config error: listener[0].port = 70000: expected an integer from 1 to 65535",
    ),
    (
        '[[listener]]\nprotocol = "gopher"',
        "config error: listener[0].protocol = 'gopher': expected one of smtp, submission, "
        "lmtp, pop3, pop2, imap",
    ),
    (
        '[[listener]]\nprotocol = "imap"\ntls = "maybe"',
        "config error: listener[0].tls = 'maybe': expected one of none, starttls, implicit",
    ),
    (
        '[[listener]]\nprotocol = "smtp"\nport = 2600\n'
        '[[listener]]\nprotocol = "pop3"\nport = 2600',
        "config error: listener[1].port = 2600: expected a port not used by another listener",
    ),
    ("domains = []", "config error: domains = []: expected at least one local domain"),
    (
        'colour = "blue"',
        "config error: colour = 'blue': expected one of the known keys: aliases, auth, data_dir, "
        "domains, hostname, limits, listener, log, metrics, relay, shutdown_timeout, "
        "smtp_processes, tls",
    ),
    (
        '[tls]\ncert = "cert.pem"',
        "config error: tls.key = None: expected a certificate and a key, both or neither",
    ),
    (
        "[limits.smtp]\nmessage_size = -1",
        "config error: limits.smtp.message_size = -1: expected a positive integer",
    ),
    (
        "[limits.pop3]\nidle_timeout = false",
        "config error: limits.pop3.idle_timeout = False: expected a positive number of seconds",
    ),
    ('[log]\nformat = "xml"', 'config error: log.format = \'xml\': expected "text" or "json"'),
    (
        '[relay]\nnetworks = ["10.0.0.0/33"]',
        "config error: relay.networks = '10.0.0.0/33': expected a network in CIDR form",
    ),
    (
        '[auth]\nmechanisms = ["GSSAPI"]',
        "config error: auth.mechanisms = 'GSSAPI': expected one of PLAIN, LOGIN, "
        "SCRAM-SHA-256, CRAM-MD5",
    ),
    (
        '[metrics]\nlisten = "localhost"',
        "config error: metrics.listen = 'localhost': expected ADDR:PORT, e.g. 127.0.0.1:2525",
    ),
    (
        "shutdown_timeout = 0",
        "config error: shutdown_timeout = 0: expected a positive number of seconds",
    ),
    (
        "smtp_processes = 0",
        'config error: smtp_processes = 0: expected "auto" or a whole number from 1 to 64',
    ),
    (
        'smtp_processes = "many"',
        "config error: smtp_processes = 'many': expected \"auto\" or a whole number from 1 to 64",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_CONFIGS)
def test_bad_config_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text + "\n")
    assert main(["config", "check", str(path)]) == 1
    assert capsys.readouterr().err == f"{path}: {message}\n"
    # The server refuses to start with the same words, before touching any port or file.
    data = tmp_path / "data"
    assert main(["serve", "--config", str(path), "--data", str(data)]) == 2
    assert capsys.readouterr().err == f"mailcore serve: {message}\n"
    assert not data.exists()


def test_invalid_toml_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("data_dir = \n")
    assert main(["config", "check", str(path)]) == 1
    assert capsys.readouterr().err == (
        f"{path}: config error: --config = '{path}': expected valid TOML "
        "(Invalid value (at line 1, column 12))\n"
    )
    missing = tmp_path / "nope.toml"
    assert main(["config", "check", str(missing)]) == 1
    assert capsys.readouterr().err == (
        f"{missing}: config error: --config = '{missing}': expected a readable file "
        "(No such file or directory)\n"
    )


def test_flags_are_checked_like_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert = tmp_path / "c.pem"
    assert main(["serve", "--data", str(tmp_path / "d"), "--tls-cert", str(cert)]) == 2
    assert capsys.readouterr().err == (
        "mailcore serve: config error: --tls-key = None: expected a certificate and a key, "
        "both or neither\n"
    )
    with pytest.raises(SystemExit):
        main(["serve", "--smtp", "nowhere"])
    assert "config error: ADDR:PORT = 'nowhere': expected ADDR:PORT" in capsys.readouterr().err


def test_example_is_valid_and_check_says_ok(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "example"]) == 0
    text = capsys.readouterr().out
    tomllib.loads(text)
    assert "shutdown_timeout = 10.0" in text and "[limits.imap]" in text
    path = tmp_path / "example.toml"
    path.write_text(text)
    assert main(["config", "check", str(path)]) == 0
    assert capsys.readouterr().out == (
        f"{path}: OK (smtp 127.0.0.1:2525, submission 127.0.0.1:5587, "
        "pop3 127.0.0.1:1110, imap 127.0.0.1:1143)\n"
    )


def _ctx(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def test_sighup_reloads_the_certificate_without_dropping_sessions(tmp_path: Path) -> None:
    old_ca, new_ca = trustme.CA(), trustme.CA()
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    leaf = old_ca.issue_cert("localhost")
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    config = tmp_path / "mailcore.toml"
    ports = write_config(
        config,
        tmp_path / "data",
        [("submission", "starttls")],
        extra=f'[tls]\ncert = "{cert}"\nkey = "{key}"\n',
    )
    server = Serve("--config", str(config))
    try:
        server.wait_ready()
        port = ports["submission"]
        before = smtplib.SMTP("localhost", port)
        before.starttls(context=_ctx(old_ca))
        assert before.ehlo()[0] == 250

        leaf = new_ca.issue_cert("localhost")
        leaf.cert_chain_pems[0].write_to_path(str(cert))
        leaf.private_key_pem.write_to_path(str(key))
        server.signal(signal.SIGHUP)
        server.wait_everywhere("TLS certificate reloaded")

        with smtplib.SMTP("localhost", port) as after:
            after.starttls(context=_ctx(new_ca))
            assert after.ehlo()[0] == 250
        with smtplib.SMTP("localhost", port) as stale, pytest.raises(ssl.SSLCertVerificationError):
            stale.starttls(context=_ctx(old_ca))
        # The session that started before the reload goes on.
        assert before.noop()[0] == 250
        before.quit()

        # A broken pair is refused and the current one kept.
        cert.write_text("not a certificate\n")
        server.signal(signal.SIGHUP)
        server.wait_everywhere("TLS reload failed")
        with smtplib.SMTP("localhost", port) as again:
            again.starttls(context=_ctx(new_ca))
            assert again.ehlo()[0] == 250
        assert server.stop() == 0
    finally:
        server.kill()


def test_second_server_on_the_same_data_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first_cfg, second_cfg = tmp_path / "a.toml", tmp_path / "b.toml"
    write_config(first_cfg, data, [("smtp", "none")])
    write_config(second_cfg, data, [("smtp", "none")])
    first = Serve("--config", str(first_cfg))
    try:
        first.wait_ready()
        second = mailcore("serve", "--config", str(second_cfg))
        assert second.returncode == 1
        assert second.stderr == (
            f"mailcore serve: another mailcore server (pid {first.proc.pid}) is already running "
            f"on the data directory {data}; stop it first or use another --data directory\n"
        )
        assert first.stop() == 0
        # Once the first is gone the lock is free again.
        again = Serve("--config", str(second_cfg))
        try:
            again.wait_ready()
            assert again.stop() == 0
        finally:
            again.kill()
    finally:
        first.kill()


def test_port_in_use_gives_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = mailcore("serve", "--data", str(tmp_path / "d"), "--smtp", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert result.stderr.endswith(
        f"mailcore serve: cannot listen on 127.0.0.1:{port} (smtp): the address is already in "
        "use (another server listens there); stop it or choose another port in the config "
        "file or with --smtp ADDR:PORT\n"
    )
    assert "Traceback" not in result.stderr


def test_privileged_port_without_the_right_gives_a_clear_message(tmp_path: Path) -> None:
    # We run as root here: drop CAP_NET_BIND_SERVICE, as an ordinary user lacks it.
    drop = ["setpriv", "--inh-caps=-net_bind_service", "--bounding-set=-net_bind_service"]
    result = mailcore(
        "serve",
        "--data",
        str(tmp_path / "d"),
        "--smtp",
        "127.0.0.1:25",
        "--submission",
        f"127.0.0.1:{free_port()}",
        prefix=drop,
    )
    assert result.returncode == 1
    assert result.stderr.endswith(
        "mailcore serve: cannot listen on 127.0.0.1:25 (smtp): permission denied. Ports below "
        "1024 need root or CAP_NET_BIND_SERVICE; use a port from 1024 up, "
        "e.g. --smtp 127.0.0.1:2525\n"
    )
    assert "Traceback" not in result.stderr


def test_aliases_file_is_read_at_start_and_on_sighup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aliases = tmp_path / "aliases.txt"
    aliases.write_text("# team addresses\ninfo@localhost: ann@localhost  # the front desk\n")
    config = tmp_path / "mailcore.toml"
    ports = write_config(
        config, tmp_path / "data", [("smtp", "none")], extra=f'aliases = "{aliases}"\n'
    )
    result = mailcore(
        "user", "add", "ann@localhost", "--config", str(config), "--password-stdin", stdin="pw\n"
    )
    assert result.returncode == 0, result.stderr
    server = Serve("--config", str(config))
    try:
        server.wait_ready()
        with smtplib.SMTP("localhost", ports["smtp"]) as s:
            s.ehlo()
            s.mail("a@remote.example")
            assert s.rcpt("INFO@localhost")[0] == 250
            assert s.rcpt("sales@localhost") == (550, b"5.1.1 No such user here")
            assert s.data(b"Subject: one\r\n\r\nhi\r\n")[0] == 250
        aliases.write_text("info@localhost: ann@localhost\nsales@localhost: ann@localhost\n")
        server.signal(signal.SIGHUP)
        server.wait_everywhere("aliases reloaded")
        with smtplib.SMTP("localhost", ports["smtp"]) as s:
            assert (
                s.sendmail("a@remote.example", ["sales@localhost"], b"Subject: two\r\n\r\n") == {}
            )
        # A broken file on SIGHUP keeps the table that works.
        aliases.write_text("sales@localhost ann@localhost\n")
        server.signal(signal.SIGHUP)
        server.wait_everywhere("aliases reload failed")
        with smtplib.SMTP("localhost", ports["smtp"]) as s:
            assert s.sendmail("a@remote.example", ["sales@localhost"], b"Subject: 3\r\n\r\n") == {}
        assert server.stop() == 0
    finally:
        server.kill()
    reindex = mailcore("store", "reindex", "--config", str(config))
    assert reindex.stdout == "indexed 3 messages\n"
    # `config check` reads the aliases file too, and names the line it cannot use.
    assert main(["config", "check", str(config)]) == 1
    assert capsys.readouterr().err == (
        f"{config}: config error: aliases line 1 = 'sales@localhost ann@localhost': "
        "expected ALIAS@DOMAIN: ACCOUNT@DOMAIN\n"
    )


def test_unusable_data_directory_gives_a_clear_message(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the data directory should be\n")
    result = mailcore(
        "serve", "--data", str(blocker / "data"), "--smtp", f"127.0.0.1:{free_port()}"
    )
    assert result.returncode == 1
    assert result.stderr.endswith(
        f"mailcore serve: cannot use the data directory {blocker / 'data'}: Not a directory\n"
    )
    assert "Traceback" not in result.stderr
