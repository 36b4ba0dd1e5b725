"""The ``mailcore`` command line.

Each subcommand is a small function; the argument parser is built in one place
so ``mailcore --help`` lists everything.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import BinaryIO

from mailcore import __version__
from mailcore.config import Config, ConfigError
from mailcore.errors import CoreError

__all__ = ["main"]

_CODEC_OPS = ("b64encode", "b64decode", "qp-encode", "qp-decode", "dot-stuff", "dot-unstuff")


def _read_input(path: str | None) -> bytes:
    if path is None or path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as fh:
        return fh.read()


def _dot_unstuff(data: bytes) -> bytes:
    from mailcore import _core

    reader = _core.DotReader(max_size=len(data) + 1)
    body, done = reader.feed(data)
    if not done:
        raise CoreError(
            'dot-stuffed input does not end with "." on a line of its own',
            offset=len(data),
            expected='CRLF "." CRLF',
        )
    if reader.rest:
        # Silently dropping them would lose data the user meant to convert.
        end = len(data) - len(reader.rest)
        raise CoreError(
            f'bytes after the end of data ("." CRLF) at offset {end}',
            offset=end,
            expected="end of input",
        )
    return body


def _codec_function(op: str, strict: bool) -> Callable[[bytes], bytes]:
    from mailcore import _core

    table: dict[str, Callable[[bytes], bytes]] = {
        "b64encode": lambda d: _core.b64encode(d),
        "b64decode": lambda d: _core.b64decode(d, strict=strict),
        "qp-encode": lambda d: _core.qp_encode(d),
        "qp-decode": lambda d: _core.qp_decode(d),
        "dot-stuff": lambda d: _core.dot_stuff(d),
        "dot-unstuff": _dot_unstuff,
    }
    return table[op]


def _cmd_codec(args: argparse.Namespace, out: BinaryIO) -> int:
    try:
        data = _read_input(args.file)
    except OSError as exc:
        print(f"mailcore codec {args.operation}: {exc}", file=sys.stderr)
        return 1
    try:
        result = _codec_function(args.operation, args.strict)(data)
    except CoreError as exc:
        print(f"mailcore codec {args.operation}: {exc}", file=sys.stderr)
        return 1
    out.write(result)
    out.flush()
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise ValueError("the passwords differ")
    return first


def _cmd_user(args: argparse.Namespace, out: BinaryIO) -> int:
    import asyncio

    from mailcore.auth.accounts import AccountError, Accounts
    from mailcore.store.maildir import MaildirStore

    try:
        args.data = _data_dir(args)
    except ConfigError as exc:
        print(f"mailcore user: {exc}", file=sys.stderr)
        return 2
    from pathlib import Path

    # The directory holds password hashes and the TLS key: only its owner may enter.
    Path(args.data).mkdir(mode=0o700, parents=True, exist_ok=True)
    accounts = Accounts(args.data)

    async def with_store(account: str, create: bool) -> None:
        async with MaildirStore(args.data) as store:
            if create:
                await store.create_account(account)
            else:
                await store.delete_account(account)

    try:
        if args.action == "list":
            for acc in accounts.list_accounts():
                line = acc.address + "".join(f" {alias}" for alias in acc.aliases)
                out.write(line.encode() + b"\n")
        elif args.address is None:
            print(f"mailcore user {args.action}: an ADDRESS is required", file=sys.stderr)
            return 2
        elif args.action == "add" and args.alias_of:
            accounts.add_alias(args.address, args.alias_of)
        elif args.action == "add":
            account = accounts.add_user(args.address, _read_password(args))
            asyncio.run(with_store(account, True))
        elif args.action == "passwd":
            accounts.set_password(args.address, _read_password(args))
        elif args.action == "del":
            if accounts.lookup(args.address) not in (None, args.address.lower()):
                accounts.delete_alias(args.address)
            else:
                accounts.delete_user(args.address)
                if args.purge:
                    asyncio.run(with_store(args.address.lower(), False))
    except (AccountError, ValueError) as exc:
        print(f"mailcore user {args.action}: {exc}", file=sys.stderr)
        return 1
    finally:
        accounts.close()
    out.flush()
    return 0


def _cmd_store(args: argparse.Namespace, out: BinaryIO) -> int:
    import asyncio

    from mailcore.store.maildir import reindex

    try:
        args.data = _data_dir(args)
    except ConfigError as exc:
        print(f"mailcore store: {exc}", file=sys.stderr)
        return 2
    count = asyncio.run(reindex(args.data))
    out.write(f"indexed {count} messages\n".encode())
    out.flush()
    return 0


def _data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        help="data directory (default: the config file's data_dir, else ./mailcore-data)",
    )
    parser.add_argument("--config", help="configuration file (TOML) whose data_dir is used")


def _data_dir(args: argparse.Namespace) -> str:
    """--data, else the data_dir of --config, else ./mailcore-data."""
    if args.data is not None:
        return str(args.data)
    if args.config is not None:
        from pathlib import Path

        from mailcore.config import load_config

        return str(load_config(Path(args.config)).data_dir)
    return "./mailcore-data"


def _cmd_bench_smtp(args: argparse.Namespace, out: BinaryIO) -> int:
    from mailcore.smtp import bench

    sizes = [int(size) for size in args.sizes.split(",")]
    results = bench.run(sizes, messages=args.messages, sessions=args.sessions)
    if bench.uvloop_available() and not args.no_uvloop:
        results += bench.run(sizes, messages=args.messages, sessions=args.sessions, use_uvloop=True)
    out.write(bench.format_table(results).encode() + b"\n")
    out.flush()
    return 0


def _add_bench(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = sub.add_parser(
        "bench",
        help="time mailcore against named peers",
        description="Benchmarks that print a Markdown table, each against a named peer.",
    )
    areas = bench.add_subparsers(dest="area", metavar="AREA", required=True)
    smtp = areas.add_parser(
        "smtp",
        help="SMTP server messages/s, against aiosmtpd, driven by Postfix's smtp-source",
    )
    smtp.add_argument("--messages", type=int, default=2000, help="messages per run")
    smtp.add_argument("--sessions", type=int, default=20, help="parallel sessions")
    smtp.add_argument("--sizes", default="4096,102400", help="payload sizes in bytes")
    smtp.add_argument("--no-uvloop", action="store_true", help="skip the uvloop runs")
    smtp.set_defaults(handler=_cmd_bench_smtp)
    codecs = areas.add_parser(
        "codecs",
        help="base64, quoted-printable, RFC 2047 and dot-stuffing MB/s, "
        "against the standard library and pybase64",
    )
    codecs.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    codecs.add_argument(
        "--size", type=float, default=10.0, metavar="MIB", help="input size (default 10 MiB)"
    )
    codecs.add_argument(
        "--repeat", type=int, default=5, help="timed runs per function; the median is kept"
    )
    codecs.set_defaults(handler=_cmd_bench_codecs)
    pop3 = areas.add_parser(
        "pop3",
        help="POP3 server RETR MB/s and LIST+UIDL time, against Dovecot's pop3d",
        description="Alternating rounds against Dovecot (needs dovecot-pop3d and root).",
    )
    pop3.add_argument("--rounds", type=int, default=7, help="alternating rounds; medians kept")
    pop3.add_argument("--messages", type=int, default=1000, help="messages fetched by RETR")
    pop3.add_argument("--size", type=int, default=100 * 1024, help="RETR message size in bytes")
    pop3.add_argument("--list", type=int, default=10_000, help="messages in the LIST+UIDL drop")
    pop3.set_defaults(handler=_cmd_bench_pop3)
    imap = areas.add_parser(
        "imap",
        help="IMAP server LOGIN/SELECT, FETCH and SEARCH times, against Dovecot's imapd",
    )
    imap.add_argument("--messages", type=int, default=10_000, help="messages in the mailbox")
    imap.add_argument("--repeat", type=int, default=5, help="timed runs; the median is kept")
    imap.set_defaults(handler=_cmd_bench_imap)
    serve = areas.add_parser(
        "serve",
        help="the whole path: smtp-source into mailcore serve with durable local delivery, "
        "against Postfix delivering into a Maildir",
    )
    serve.add_argument("--messages", type=int, default=2000, help="messages per run")
    serve.add_argument("--sessions", type=int, default=20, help="parallel sessions")
    serve.add_argument("--size", type=int, default=4096, help="payload size in bytes")
    serve.add_argument(
        "--repeat", type=int, default=3, help="runs per server, taking turns; the best is kept"
    )
    serve.set_defaults(handler=_cmd_bench_serve)
    _add_bench_relay(areas)


def _cmd_bench_pop3(args: argparse.Namespace, out: BinaryIO) -> int:
    import os

    from mailcore.bench import dovecot, pop3

    if not os.path.exists(dovecot.DOVECOT):
        sys.stderr.write(f"mailcore bench pop3: {dovecot.DOVECOT} not found (dovecot-pop3d)\n")
        return 1
    results = pop3.interleaved(
        args.rounds, retr_count=args.messages, retr_size=args.size, list_count=args.list
    )
    out.write((pop3.format_table(results) + "\n").encode())
    out.flush()
    return 0


def _cmd_bench_imap(args: argparse.Namespace, out: BinaryIO) -> int:
    from mailcore.imap import bench

    results = bench.run(args.messages, args.repeat)
    out.write(bench.format_table(results, args.messages).encode() + b"\n")
    out.flush()
    return 0


def _cmd_bench_serve(args: argparse.Namespace, out: BinaryIO) -> int:
    from mailcore.bench import serve as area

    results = area.run(
        args.size, messages=args.messages, sessions=args.sessions, repeat=args.repeat
    )
    out.write(area.format_table(results).encode() + b"\n")
    out.flush()
    return 0


def _cmd_bench_codecs(args: argparse.Namespace, out: BinaryIO) -> int:
    from mailcore.bench import codecs as area
    from mailcore.bench import format_table, write_json

    size = int(args.size * area.MIB)
    results = area.run(size=size, repeat=args.repeat)
    title = (
        f"Codecs: inputs of {args.size:g} MiB, median of {args.repeat} runs, "
        "MB/s of input (speed-up = peer time / mailcore time)"
    )
    out.write((format_table(results, title) + "\n").encode())
    out.flush()
    if args.json:
        write_json(results, args.json)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="mailcore", description="SMTP, POP3, POP2 and IMAP4 on a Rust core."
    )
    parser.add_argument("--version", action="version", version=f"mailcore {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_send_parser(sub)

    codec = sub.add_parser(
        "codec",
        help="encode or decode a file or stdin (base64, quoted-printable, dot-stuffing)",
        description="Read FILE (or stdin), write the result to stdout. "
        "Malformed input in strict mode exits with status 1 and a message.",
    )
    codec.add_argument("operation", choices=_CODEC_OPS)
    codec.add_argument("file", nargs="?", help="input file (default: stdin)")
    codec.add_argument(
        "--strict",
        action="store_true",
        help="refuse malformed input instead of decoding it leniently (b64decode)",
    )
    codec.set_defaults(handler=_cmd_codec)

    user = sub.add_parser(
        "user",
        help="add, delete, list accounts or change a password",
        description="Manage local accounts. The password is read from stdin "
        "(--password-stdin) or prompted for; never give it on the command line.",
    )
    user.add_argument("action", choices=("add", "del", "list", "passwd"))
    user.add_argument("address", nargs="?", help="the account's (or alias's) address")
    user.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    user.add_argument("--alias-of", metavar="ACCOUNT", help="add ADDRESS as an alias of ACCOUNT")
    user.add_argument("--purge", action="store_true", help="del: also remove the account's mail")
    _data_options(user)
    user.set_defaults(handler=_cmd_user)

    store = sub.add_parser("store", help="maintain the mail store")
    store.add_argument(
        "action",
        choices=("reindex",),
        help="reindex: rebuild the index from the Maildirs, keeping UIDs",
    )
    _data_options(store)
    store.set_defaults(handler=_cmd_store)
    _add_bench(sub)
    _add_serve_parsers(sub)
    _add_queue(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse (before 3.12) fills an optional positional greedily, so in
    # `mailcore codec b64decode --strict FILE` the FILE after the flag is left
    # over: hand it to the positional it belongs to.
    if (
        getattr(args, "command", None) == "codec"
        and args.file is None
        and len(extra) == 1
        and (extra[0] == "-" or not extra[0].startswith("-"))
    ):
        args.file = extra.pop()
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    result: int = handler(args, sys.stdout.buffer)
    return result


# ------------------------------------------------------------------ send ---


def _split_server(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise argparse.ArgumentTypeError(f"expected ADDR:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _cmd_send(args: argparse.Namespace, out: BinaryIO) -> int:
    import email.message
    import email.utils
    import os

    from mailcore.errors import MailcoreError
    from mailcore.smtp.client import send

    host, port = args.server
    msg = email.message.EmailMessage()
    msg["From"] = args.sender
    msg["To"] = ", ".join(args.to)
    if args.subject is not None:
        msg["Subject"] = args.subject
    msg["Date"] = email.utils.formatdate(localtime=True)
    msg["Message-ID"] = email.utils.make_msgid()
    msg.set_content(sys.stdin.buffer.read().decode("utf-8", "replace"))
    from mailcore.tls import client_context

    context = None
    if args.tls or args.starttls:
        context = client_context(args.cafile)
    password = None
    if args.auth is not None:
        # Never on the command line, where ps and shell history would show it.
        password = os.environ.get("MAILCORE_PASSWORD")
        if password is None:
            import getpass

            password = getpass.getpass(f"Password for {args.auth}: ")
    try:
        result = send(
            msg,
            host=host,
            port=port,
            mail_from=args.sender,
            rcpt_tos=args.to,
            starttls=args.starttls,
            implicit_tls=args.tls,
            ssl_context=context,
            username=args.auth,
            password=password,
            lmtp=args.lmtp,
        )
    except (MailcoreError, OSError) as exc:
        print(f"mailcore send: {exc}", file=sys.stderr)
        return 1
    for rcpt, response in result.recipients.items():
        out.write(f"{rcpt}: {response}\n".encode())
    out.flush()
    return 0 if result.ok else 1


def _add_send_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    send = sub.add_parser(
        "send",
        help="send a message read from stdin over SMTP (or LMTP)",
        description="Read the message body from stdin and send it. The password for "
        "--auth comes from $MAILCORE_PASSWORD or a prompt, never from the command line. "
        "Exit status 0 if every recipient was accepted, 1 otherwise.",
    )
    send.add_argument(
        "--server", type=_split_server, default=("127.0.0.1", 2525), metavar="ADDR:PORT"
    )
    send.add_argument("--from", dest="sender", required=True, metavar="ADDRESS")
    send.add_argument("--to", action="append", required=True, metavar="ADDRESS")
    send.add_argument("--subject")
    tls = send.add_mutually_exclusive_group()
    tls.add_argument("--starttls", action="store_true", help="upgrade with STARTTLS (required)")
    tls.add_argument("--tls", action="store_true", help="implicit TLS (port 465 style)")
    send.add_argument("--cafile", help="trust the CA certificates in this PEM file")
    send.add_argument("--auth", metavar="USER", help="log in as USER")
    send.add_argument("--lmtp", action="store_true", help="speak LMTP (LHLO) instead of SMTP")
    send.set_defaults(handler=_cmd_send)


# ------------------------------------------------------- serve and config ---


def _listener_flag(value: str) -> tuple[str, int]:
    from mailcore.config import parse_hostport

    try:
        return parse_hostport("ADDR:PORT", value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


# flag -> (protocol, TLS mode): the plain listeners replace the file's
# listener of that protocol, the implicit-TLS twins are added.
_LISTENER_FLAGS = {
    "smtp": ("smtp", "starttls"),
    "submission": ("submission", "starttls"),
    "submissions": ("submission", "implicit"),
    "lmtp": ("lmtp", "none"),
    "pop3": ("pop3", "starttls"),
    "pop3s": ("pop3", "implicit"),
    "pop2": ("pop2", "none"),
    "imap": ("imap", "starttls"),
    "imaps": ("imap", "implicit"),
}


def serve_config(args: argparse.Namespace) -> Config:
    """The configuration of ``mailcore serve``: the file (if any), then the flags over it."""
    from pathlib import Path

    from mailcore.config import Listener, load_config, parse_hostport, parse_processes

    cfg = load_config(Path(args.config) if args.config else None)
    changes: dict[str, object] = {}
    if args.data is not None:
        changes["data_dir"] = Path(args.data)
    if args.domain:
        changes["domains"] = tuple(d.lower() for d in args.domain)
    if args.hostname is not None:
        changes["hostname"] = args.hostname
    if (args.tls_cert is None) != (args.tls_key is None):
        missing = "--tls-key" if args.tls_cert else "--tls-cert"
        raise ConfigError(missing, None, "a certificate and a key, both or neither")
    if args.tls_cert is not None:
        changes["tls_cert"] = Path(args.tls_cert).resolve()
        changes["tls_key"] = Path(args.tls_key).resolve()
    if args.log_format is not None:
        changes["log_format"] = args.log_format
    if args.metrics is not None:
        host, port = parse_hostport("--metrics", args.metrics)
        changes["metrics"] = f"{host}:{port}"
    if args.smtp_processes is not None:
        changes["smtp_processes"] = parse_processes("--smtp-processes", args.smtp_processes)
    listeners = list(cfg.listeners)
    for flag, (protocol, tls) in _LISTENER_FLAGS.items():
        where = getattr(args, flag)
        if where is None:
            continue
        new = Listener(protocol, where[0], where[1], tls)  # type: ignore[arg-type]
        same = [i for i, lst in enumerate(listeners) if lst.protocol == protocol and lst.tls == tls]
        if same and tls != "implicit":
            listeners[same[0]] = new
        else:
            listeners.append(new)
    seen: dict[tuple[str, int], str] = {}
    for lst in listeners:
        key = (lst.address, lst.port)
        if key in seen:
            raise ConfigError(
                f"--{lst.protocol}",
                f"{lst.address}:{lst.port}",
                f"a port not used by another listener ({seen[key]})",
            )
        seen[key] = lst.protocol
    changes["listeners"] = tuple(listeners)
    return cfg.with_overrides(**changes)


def _cmd_serve(args: argparse.Namespace, out: BinaryIO) -> int:
    import asyncio
    import io

    from mailcore.app import MailServer, ServeError
    from mailcore.logs import setup_logging

    try:
        cfg = serve_config(args)
    except ConfigError as exc:
        print(f"mailcore serve: {exc}", file=sys.stderr)
        return 2
    logs = setup_logging(cfg.log_format, cfg.log_level)
    text = io.TextIOWrapper(out, encoding="utf-8", line_buffering=True, write_through=True)
    server = MailServer(cfg, out=text, event_loop=args.event_loop)
    factory = None
    if args.event_loop != "asyncio":
        try:
            import uvloop  # type: ignore[import-not-found, unused-ignore]

            factory = uvloop.new_event_loop
        except ImportError:
            if args.event_loop == "uvloop":
                print("mailcore serve: uvloop is not installed", file=sys.stderr)
                return 2
    error: ServeError | None = None
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            status = runner.run(server.run())
    except ServeError as exc:
        error = exc
    except KeyboardInterrupt:
        # Ctrl-C before the signal handlers were installed (during start-up).
        status = 130
    finally:
        logs.stop()  # the log lines written so far come before the error message
        text.detach()
    if error is not None:
        print(f"mailcore serve: {error}", file=sys.stderr)
        return 1
    return status


def _cmd_config(args: argparse.Namespace, out: BinaryIO) -> int:
    from pathlib import Path

    from mailcore.config import example_config, load_aliases, load_config

    if args.action == "example":
        out.write(example_config().encode() + b"\n")
        out.flush()
        return 0
    if args.file is None:
        print("mailcore config check: a FILE is required", file=sys.stderr)
        return 2
    try:
        cfg = load_config(Path(args.file))
        if cfg.aliases is not None:
            load_aliases(cfg.aliases)
    except ConfigError as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 1
    listeners = ", ".join(f"{lst.protocol} {lst.address}:{lst.port}" for lst in cfg.listeners)
    out.write(f"{args.file}: OK ({listeners})\n".encode())
    out.flush()
    return 0


# ----------------------------------------------------------------- queue ---


def _queue_dir(args: argparse.Namespace) -> str:
    import os

    return os.path.join(_data_dir(args), "queue")


def _cmd_queue(args: argparse.Namespace, out: BinaryIO) -> int:
    import datetime
    import os
    import time

    from mailcore.relay.queue import Queue

    path = _queue_dir(args)
    if not os.path.isdir(path):
        if args.action == "list":
            out.write(b"queue is empty\n")
            out.flush()
            return 0
        print(f"mailcore queue: no queue in {path}", file=sys.stderr)
        return 1
    queue = Queue(path)
    # Not the owner: safe beside a running relay (rows only, no spool files).
    queue.open(owner=False)
    try:
        if args.action == "list":
            entries = queue.entries()
            if not entries:
                out.write(b"queue is empty\n")
            for msg in entries:
                when = datetime.datetime.fromtimestamp(msg.created, datetime.timezone.utc)
                out.write(
                    f"{msg.id}  {msg.size:>9}  {when:%Y-%m-%d %H:%M:%S}Z  <{msg.sender}>\n".encode()
                )
                for r in msg.recipients:
                    nxt = datetime.datetime.fromtimestamp(r.next_attempt, datetime.timezone.utc)
                    line = f"    {r.address}  {r.state.value}  attempts={r.attempts}"
                    if r.state.value == "queued":
                        line += f"  next={nxt:%H:%M:%S}Z"
                    if r.last_reply:
                        line += f"  ({r.last_reply})"
                    out.write(line.encode() + b"\n")
        elif args.action == "flush":
            count = queue.flush(time.time())
            out.write(f"{count} recipients due now\n".encode())
        else:
            if not args.id:
                print("mailcore queue delete: which ID?", file=sys.stderr)
                return 2
            if not queue.delete(args.id.upper()):
                print(f"mailcore queue delete: no message {args.id}", file=sys.stderr)
                return 1
            out.write(f"deleted {args.id.upper()}\n".encode())
    finally:
        queue.close()
    out.flush()
    return 0


def _add_serve_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the mail server (SMTP, submission, POP3, IMAP; POP2 and LMTP when asked)",
        description="Run SMTP (MX-style local delivery), submission (STARTTLS and AUTH "
        "required), POP3 and IMAP on one store. With no arguments: data in ./mailcore-data, "
        "127.0.0.1, ports 2525, 5587, 1110, 1143, a self-signed certificate. Flags override "
        "the config file. SIGHUP reloads the certificate, SIGTERM stops gracefully.",
    )
    serve.add_argument("--config", help="configuration file (TOML; see `mailcore config example`)")
    serve.add_argument("--data", help="data directory (default ./mailcore-data)")
    serve.add_argument(
        "--domain", action="append", help="a local domain (repeat for several; default localhost)"
    )
    serve.add_argument("--hostname", help="name used in greetings and Received: headers")
    for flag, (protocol, tls) in _LISTENER_FLAGS.items():
        what = f"{protocol} listener" + (", implicit TLS" if tls == "implicit" else "")
        serve.add_argument(f"--{flag}", type=_listener_flag, metavar="ADDR:PORT", help=what)
    serve.add_argument("--tls-cert", metavar="FILE", help="certificate chain (PEM)")
    serve.add_argument("--tls-key", metavar="FILE", help="private key (PEM)")
    serve.add_argument("--log-format", choices=("text", "json"), help="log line format")
    serve.add_argument(
        "--metrics", metavar="ADDR:PORT", help="serve Prometheus metrics over HTTP here"
    )
    serve.add_argument(
        "--event-loop",
        choices=("auto", "asyncio", "uvloop"),
        default="auto",
        help="auto (default): uvloop when installed, else asyncio",
    )
    serve.add_argument(
        "--smtp-processes",
        metavar="N",
        help='processes accepting SMTP/submission/LMTP: a number, or "auto" (one per core, '
        "at most 4; the default)",
    )
    serve.set_defaults(handler=_cmd_serve)

    config = sub.add_parser(
        "config",
        help="check a configuration file, or print a commented example of every key",
    )
    config.add_argument("action", choices=("check", "example"))
    config.add_argument("file", nargs="?", help="check: the file to validate")
    config.set_defaults(handler=_cmd_config)


def _add_queue(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    queue = sub.add_parser(
        "queue",
        help="list, flush or delete messages in the relay queue",
        description="list: every queued message and its recipients' state; flush: make "
        "every deferred recipient due now (a running relay picks them up within seconds); "
        "delete ID: remove a message without notifying anyone.",
    )
    queue.add_argument("action", choices=("list", "flush", "delete"))
    queue.add_argument("id", nargs="?", help="delete: the queue id (from list)")
    _data_options(queue)
    queue.set_defaults(handler=_cmd_queue)


def _cmd_bench_relay(args: argparse.Namespace, out: BinaryIO) -> int:
    from mailcore.relay import bench

    sizes = [int(size) for size in args.sizes.split(",")]
    results = bench.run(sizes, messages=args.messages, sessions=args.sessions)
    out.write(bench.format_table(results).encode() + b"\n")
    out.flush()
    return 0


def _add_bench_relay(areas: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    relay = areas.add_parser(
        "relay",
        help="relay messages/s and 250-to-delivery latency, smtp-source -> relay -> "
        "smtp-sink, against Postfix as a relay",
    )
    relay.add_argument("--messages", type=int, default=2000, help="messages per run")
    relay.add_argument("--sessions", type=int, default=20, help="parallel sessions")
    relay.add_argument("--sizes", default="4096,102400", help="payload sizes in bytes")
    relay.set_defaults(handler=_cmd_bench_relay)
