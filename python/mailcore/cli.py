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


# Areas of `mailcore bench`; smtp, imap and relay join as their issues land.
_BENCH_AREAS = ("codecs",)


def _cmd_bench(args: argparse.Namespace, out: BinaryIO) -> int:
    from mailcore.bench import format_table, write_json

    if args.area == "codecs":
        from mailcore.bench import codecs as area

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

    bench = sub.add_parser(
        "bench",
        help="time mailcore against its peers (standard library, pybase64, ...)",
        description="Print a table of throughput and speed-ups over the peers.",
    )
    bench.add_argument("area", choices=_BENCH_AREAS)
    bench.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    bench.add_argument(
        "--size", type=float, default=10.0, metavar="MIB", help="input size (default 10 MiB)"
    )
    bench.add_argument(
        "--repeat", type=int, default=5, help="timed runs per function; the median is kept"
    )
    bench.set_defaults(handler=_cmd_bench)
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
