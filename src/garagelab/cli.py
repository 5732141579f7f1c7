"""`garagelab <system> <verb> ...`: one entry point for every system.

User errors print one line `error: ...` and exit 2; `--debug` (or GARAGELAB_DEBUG=1) adds the
traceback. Each system contributes its verbs through `garagelab/<system>/cli.py:register`,
which must import heavy dependencies lazily so that `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from garagelab import SHARED, SYSTEMS, __version__
from garagelab.core import cli as core_cli
from garagelab.core.errors import UserError


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UserError instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see `{self.prog} --help`)")


def available_systems(catalogue: dict[str, str] = SYSTEMS) -> dict[str, str]:
    """The systems (or shared parts) built into this installation, with their descriptions."""
    return {
        name: blurb
        for name, blurb in catalogue.items()
        if importlib.util.find_spec(f"garagelab.{name}") is not None
        and importlib.util.find_spec(f"garagelab.{name}.cli") is not None
    }


def build_parser() -> ArgumentParser:
    systems = available_systems()
    shared = available_systems(SHARED)
    epilog = "systems:\n" + "\n".join(f"  {n:<12}{b}" for n, b in systems.items())
    epilog += "\n\nshared tools:\n" + "\n".join(f"  {n:<12}{b}" for n, b in shared.items())
    parser = ArgumentParser(
        prog="garagelab",
        description="AI research that runs on one machine.",
        epilog=epilog + "\n\nexamples:\n  garagelab tour\n  garagelab runs list",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"garagelab {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    parser.add_argument("--runs-dir", help="where runs are stored (default: ./runs)")
    parser.add_argument(
        "--unsafe-no-isolation",
        action="store_true",
        help="run model-written programs with resource limits only, where the machine allows no isolation "
        "(no root and no unprivileged user namespaces); they could then read and write your files",
    )
    parser.set_defaults(func=lambda args: _missing_command(parser))
    sub = parser.add_subparsers(dest="command", metavar="<system or command>", parser_class=ArgumentParser)
    for name, blurb in {**systems, **shared}.items():
        system_parser = sub.add_parser(name, help=blurb, description=blurb)
        system_parser.set_defaults(func=lambda args, p=system_parser: _missing_command(p))
        importlib.import_module(f"garagelab.{name}.cli").register(system_parser)
    core_cli.register(sub)
    return parser


def _missing_command(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or bool(os.environ.get("GARAGELAB_DEBUG"))
    try:
        args = build_parser().parse_args(argv)
        if args.runs_dir:
            os.environ["GARAGELAB_RUNS"] = args.runs_dir
        if args.unsafe_no_isolation:
            os.environ["GARAGELAB_UNSAFE_NO_ISOLATION"] = "1"
        return int(args.func(args) or 0)
    except UserError as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if debug:
            raise
        if exc.filename is None:  # a socket, a pipe: ours to explain
            return _internal(exc)
        # a path the user named that cannot be read or written (a missing folder, a file where a
        # folder should be, no permission): the path and the reason, not an "internal error"
        print(f"error: {exc.filename}: {exc.strerror or exc}; check the path and its permissions", file=sys.stderr)
        return 2
    except Exception as exc:
        if debug:
            raise
        return _internal(exc)


def _internal(exc: Exception) -> int:
    """An error that is a bug of ours: one line, and how to get the traceback to report it."""
    print(
        f"error: internal error ({type(exc).__name__}: {_one_line(exc)}); "
        "rerun with --debug for the traceback and report it",
        file=sys.stderr,
    )
    return 1


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
