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
        "dot-stuff": _core.dot_stuff,
        "dot-unstuff": _dot_unstuff,
    }
    return table[op]


def _cmd_codec(args: argparse.Namespace, out: BinaryIO) -> int:
    data = _read_input(args.file)
    try:
        result = _codec_function(args.operation, args.strict)(data)
    except CoreError as exc:
        print(f"mailcore codec {args.operation}: {exc}", file=sys.stderr)
        return 1
    out.write(result)
    out.flush()
    return 0


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


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="mailcore", description="SMTP, POP3, POP2 and IMAP4 on a Rust core."
    )
    parser.add_argument("--version", action="version", version=f"mailcore {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

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
    _add_bench(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    result: int = handler(args, sys.stdout.buffer)
    return result
