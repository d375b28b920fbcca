"""The ``xflow`` command: one subcommand family per capability.

Each family lives in its package (``xflow/<pkg>/cli.py``, function ``register(subparsers)``) and
imports heavy dependencies only inside its handlers, so ``xflow --help`` stays fast. Bad input
fails at parse time (validators in :mod:`xflow.clitools`); every error is one line on stderr with a
non-zero exit and no traceback unless ``--debug``. ``--json`` / ``--debug`` work before or after
the subcommand; ``--json`` output is strict JSON (non-finite numbers become ``null`` with the
reason under ``null_reasons``).
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from collections.abc import Sequence

from xflow import __version__
from xflow.clitools import Report, XflowParser, cleanup_temp, common_parser, json_safe, run_checks

__all__ = ["main", "build_parser", "SUBCOMMAND_MODULES"]

# Every module that contributes subcommands (each defines ``register(subparsers)``).
SUBCOMMAND_MODULES = [
    "xflow.graphs.cli",      # zoo, render
    "xflow.runtime.cli",     # latency
    "xflow.notebooks",       # notebooks
    "xflow.costs.cli",       # costs
    "xflow.rewrites.cli",    # rewrite
    "xflow.envs.cli",        # rl
    "xflow.sparsify.cli",    # sparsify
    "xflow.autobatch.cli",   # autobatch
    "xflow.algsel.cli",      # algsel
    "xflow.parallel.cli",    # parallel
    "xflow.report",          # report (docs tables from results/)
]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every available subcommand registered."""
    parser = XflowParser(
        prog="xflow", description=__doc__.splitlines()[0], parents=[common_parser(top_level=True)]
    )
    parser.add_argument("--version", action="version", version=f"xflow {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod_name in SUBCOMMAND_MODULES:
        importlib.import_module(mod_name).register(sub)
    return parser


def _emit(report: Report, as_json: bool) -> None:
    if as_json:
        reasons: dict[str, str] = {}
        data = json_safe(report.data, reasons)
        if reasons:
            data["null_reasons"] = {**reasons, **(data.get("null_reasons") or {})}
        sys.stdout.write(json.dumps(data, sort_keys=True, allow_nan=False) + "\n")
    elif report.text:
        sys.stdout.write(report.text.rstrip("\n") + "\n")
    else:
        for k, v in report.data.items():
            sys.stdout.write(f"{k}: {v}\n")


def _describe(exc: BaseException) -> str:
    """One line for an unexpected exception: OS errors name the path and the reason."""
    if isinstance(exc, OSError) and exc.filename:
        what = exc.strerror or str(exc)
        return f"{what}: '{exc.filename}'" + (f" -> '{exc.filename2}'" if exc.filename2 else "")
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"xflow: {record.levelname.lower()}: {record.getMessage()}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xflow`` console script; returns the exit status."""
    import warnings

    # a third-party deprecation notice (torch_geometric's use of torch.jit.script) is not the user's
    # problem and would break "one line on stderr"
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated", category=FutureWarning)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # bad usage (already reported in one line), --help, --version
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    prog = getattr(args, "_prog", None) or f"xflow {args.command}"
    handler = logging.StreamHandler(sys.stderr)  # library warnings (e.g. a corrupt cache entry rebuilt)
    handler.setFormatter(_OneLine())
    handler.setLevel(logging.DEBUG if args.debug else logging.WARNING)
    xlog = logging.getLogger("xflow")
    old_level = xlog.level
    xlog.addHandler(handler)
    if args.debug:
        xlog.setLevel(logging.DEBUG)
    try:
        run_checks(args)
        report = func(args)
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        return 130
    except Exception as exc:  # noqa: BLE001 - turn every failure into a clean message
        if args.debug:
            raise
        from xflow.errors import XflowError

        if isinstance(exc, XflowError):
            text = " ".join(str(exc).split()) or type(exc).__name__  # always one line
            sys.stderr.write(f"{prog}: error: {text}\n")
            return 2
        sys.stderr.write(f"{prog}: error ({type(exc).__name__}): {_describe(exc)} "
                         "(run with --debug for a traceback)\n")
        return 1
    finally:
        xlog.removeHandler(handler)
        xlog.setLevel(old_level)
        cleanup_temp()
    _emit(report if isinstance(report, Report) else Report(data=dict(report or {})), args.json)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
