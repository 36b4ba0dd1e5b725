"""Configuration: defaults, overrides, and the exact message for each mistake."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from mailcore.config import ConfigError, example_config, load_config, parse_config

BAD_CONFIGS = [
    (
        'colour = "blue"',
        "config error: colour = 'blue': expected one of the known keys: "
        "aliases, auth, data_dir, domains, hostname, limits, listener, log, metrics, relay, "
        "shutdown_timeout, smtp_processes, tls",
    ),
    ("hostname = 5", "config error: hostname = 5: expected a non-empty string"),
    ("domains = []", "config error: domains = []: expected at least one local domain"),
    (
        'domains = "example.org"',
        "config error: domains = 'example.org': expected a list of non-empty strings",
    ),
    (
        '[[listener]]\nprotocol = "smtp"\nport = 70000',
        "config error: listener[0].port = 70000: expected an integer from 1 to 65535",
    ),
    (
        '[[listener]]\nprotocol = "ftp"',
        "config error: listener[0].protocol = 'ftp': expected one of "
        "smtp, submission, lmtp, pop3, pop2, imap",
    ),
    (
        '[[listener]]\nprotocol = "imap"\ntls = "maybe"',
        "config error: listener[0].tls = 'maybe': expected one of none, starttls, implicit",
    ),
    (
        '[[listener]]\nprotocol = "imap"\naddress = "mail.example.org"',
        "config error: listener[0].address = 'mail.example.org': expected an IPv4 or IPv6 address",
    ),
    (
        '[[listener]]\nprotocol = "smtp"\nport = 2525\n'
        '[[listener]]\nprotocol = "pop3"\nport = 2525',
        "config error: listener[1].port = 2525: expected a port not used by another listener",
    ),
    (
        '[tls]\ncert = "c.pem"',
        "config error: tls.key = None: expected a certificate and a key, both or neither",
    ),
    (
        '[auth]\nmechanisms = ["PLAIN", "GSSAPI"]',
        "config error: auth.mechanisms = 'GSSAPI': expected one of "
        "PLAIN, LOGIN, SCRAM-SHA-256, CRAM-MD5",
    ),
    (
        "[auth]\nallow_plaintext = 1",
        "config error: auth.allow_plaintext = 1: expected true or false",
    ),
    (
        '[relay]\nnetworks = ["10.0.0.0/33"]',
        "config error: relay.networks = '10.0.0.0/33': expected a network in CIDR form",
    ),
    (
        '[relay]\nsmarthost = "mx.example.org"',
        "config error: relay.smarthost = 'mx.example.org': expected ADDR:PORT, e.g. 127.0.0.1:2525",
    ),
    ('[log]\nformat = "xml"', 'config error: log.format = \'xml\': expected "text" or "json"'),
    (
        "[limits.smtp]\nmessage_size = -1",
        "config error: limits.smtp.message_size = -1: expected a positive integer",
    ),
    (
        '[limits.smtp]\ncommand_timeout = "5m"',
        "config error: limits.smtp.command_timeout = '5m': expected a positive number of seconds",
    ),
    (
        "[limits.smtp]\nallow_bare_lf_commands = 1",
        "config error: limits.smtp.allow_bare_lf_commands = 1: expected true or false",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_CONFIGS)
def test_bad_config_names_key_value_and_expectation(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(tomllib.loads(text))
    assert str(info.value) == message


def test_unknown_limit_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text("[limits.smtp]\nmessage_sise = 10\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.key == "limits.smtp.message_sise"


def test_invalid_toml_is_reported_with_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("hostname = \n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "valid TOML" in str(info.value)


def test_defaults_listen_on_loopback_unprivileged_ports() -> None:
    cfg = load_config(None)
    assert {(lst.protocol, lst.address, lst.port) for lst in cfg.listeners} == {
        ("smtp", "127.0.0.1", 2525),
        ("submission", "127.0.0.1", 5587),
        ("pop3", "127.0.0.1", 1110),
        ("imap", "127.0.0.1", 1143),
    }
    assert cfg.domains == ("localhost",)
    assert not cfg.allow_plaintext_auth


def test_values_from_file_and_relative_paths(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(
        'data_dir = "data"\ndomains = ["Example.ORG"]\n[tls]\ncert = "c.pem"\nkey = "k.pem"\n'
        "[limits.smtp]\nmessage_size = 1000\ncommand_timeout = 30\n"
        '[relay]\nsmarthost = "mx.example.org:25"\n'
    )
    cfg = load_config(path)
    assert cfg.data_dir == tmp_path / "data"
    assert cfg.domains == ("example.org",)
    assert cfg.tls_cert == tmp_path / "c.pem"
    assert cfg.limits.smtp.message_size == 1000
    assert cfg.limits.smtp.command_timeout == 30.0
    assert cfg.smarthost == "mx.example.org:25"


def test_example_config_is_valid_and_shows_every_limit() -> None:
    text = example_config()
    cfg = parse_config(tomllib.loads(text))
    assert cfg == load_config(None).with_overrides(data_dir=cfg.data_dir)
    assert "message_size = " in text
