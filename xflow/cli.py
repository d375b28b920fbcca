"""The ``xflow`` command: one subcommand family per capability.

Each family lives in its package (``xflow/<pkg>/cli.py``, function ``register(subparsers)``) and
imports heavy dependencies only inside its handlers, so ``xflow --help`` stays fast. Errors go to
stderr with a non-zero exit and no traceback unless ``--debug``.
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

from xflow.clitools import Report, common_parser

__all__ = ["main", "build_parser", "SUBCOMMAND_MODULES"]

# Every module that contributes subcommands. Missing modules are skipped (a capability not built yet).
SUBCOMMAND_MODULES = [
    "xflow.graphs.cli",      # zoo, render
    "xflow.runtime.cli",     # latency
    "xflow.notebooks",       # notebooks
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
    parser = argparse.ArgumentParser(
        prog="xflow", description=__doc__.splitlines()[0], parents=[common_parser()]
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod_name in SUBCOMMAND_MODULES:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name and mod_name.startswith(exc.name):
                continue  # capability not present in this checkout
            raise
        mod.register(sub)
    return parser


def _emit(report: Report, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(report.data, default=str, sort_keys=True) + "\n")
    elif report.text:
        sys.stdout.write(report.text.rstrip("\n") + "\n")
    else:
        for k, v in report.data.items():
            sys.stdout.write(f"{k}: {v}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``xflow`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        report = func(args)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Exception as exc:  # noqa: BLE001 - turn every failure into a clean message
        if getattr(args, "debug", False):
            raise
        from xflow.errors import XflowError

        kind = "error" if isinstance(exc, XflowError) else f"error ({type(exc).__name__})"
        sys.stderr.write(f"xflow {args.command}: {kind}: {exc}\n(run with --debug for a traceback)\n")
        return 2 if isinstance(exc, XflowError) else 1
    _emit(report if isinstance(report, Report) else Report(data=dict(report or {})), args.json)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
