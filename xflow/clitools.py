"""Shared pieces of the ``xflow`` command line: the :class:`Report` a command returns and
``add_command`` which gives every subcommand the common ``--json`` / ``--debug`` flags.

A subcommand module (``xflow/<pkg>/cli.py``) exposes ``register(subparsers)`` and sets
``func=handler`` on its parsers; ``handler(args) -> Report``. The CLI prints ``report.text``, or
``json.dumps(report.data)`` as one object on stdout with ``--json``.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Report", "add_command", "common_parser"]


@dataclass
class Report:
    """Result of a CLI command: machine-readable ``data`` and human-readable ``text``."""

    data: dict[str, Any] = field(default_factory=dict)
    text: str = ""


def common_parser() -> argparse.ArgumentParser:
    """Parent parser holding the flags every subcommand accepts."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--json", action="store_true", help="print the results as one JSON object on stdout")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return p


def add_command(
    subparsers: "argparse._SubParsersAction",
    name: str,
    handler: Callable[[argparse.Namespace], Report] | None,
    help: str,
    **kwargs: Any,
) -> argparse.ArgumentParser:
    """Add a subcommand with the common flags; ``handler`` is called with the parsed args."""
    p = subparsers.add_parser(name, help=help, description=help, parents=[common_parser()], **kwargs)
    if handler is not None:
        p.set_defaults(func=handler)
    return p
