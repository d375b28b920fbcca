"""The ONNX-model argument of ``xflow`` commands: the model path plus ``--input-shape`` / ``--dim``.

It sits in the graphs layer (not in :mod:`xflow.clitools`, which is base and never reads a model)
because checking the argument after parsing loads the model (:mod:`xflow.graphs.model`) and fixes
its dynamic input shapes (:mod:`xflow.graphs.overrides`).
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import onnx

from xflow.clitools import UsageError, add_check, dim_value, existing_file, input_shape, temp_dir
from xflow.graphs.model import read_model
from xflow.graphs.overrides import fix_input_shapes, symbolic_inputs

__all__ = ["add_onnx_input"]


def add_onnx_input(parser: argparse.ArgumentParser, dest: str | Sequence[str] = "model", *,
                   help: str | Sequence[str] = "ONNX model file") -> None:
    """Add the ONNX model positional(s) plus ``--input-shape NAME=DxD…`` and ``--dim NAME=N``.

    ``dest`` may name several positionals (e.g. ``("a", "b")``); one pair of override flags
    applies to all of them. After parsing, a model with symbolic input dimensions and no
    overrides is refused with the flags that fix it; with overrides, a copy with the shapes fixed
    is written to a temporary file and ``args.<dest>`` points there (the given path stays in
    ``args._given_paths``, and output checks compare against it).
    """
    dests = [dest] if isinstance(dest, str) else list(dest)
    helps = [help] * len(dests) if isinstance(help, str) else list(help)
    for d, h in zip(dests, helps):
        parser.add_argument(d, type=existing_file("ONNX model"), help=h)
    parser.add_argument("--input-shape", action="append", type=input_shape, default=None, metavar="NAME=DxD…",
                        help="fix a dynamic input's shape, e.g. --input-shape input=1x3x224x224 (repeatable)")
    parser.add_argument("--dim", action="append", type=dim_value, default=None, metavar="NAME=N",
                        help="value of a named free dimension for every input, e.g. --dim batch=1 (repeatable)")

    def check(args: argparse.Namespace) -> None:
        for d in dests:
            _prepare_onnx(args, d)

    add_check(parser, check)


def _prepare_onnx(args: argparse.Namespace, dest: str) -> None:
    """Record the given path, refuse a dynamic model without overrides, or point ``args.<dest>``
    at a shape-fixed copy in a temporary directory (removed when the command ends)."""
    given = getattr(args, dest)
    args._given_paths = {**getattr(args, "_given_paths", {}), dest: given}
    shapes = dict(args.input_shape or ())
    dims = dict(args.dim or ())
    model = read_model(given)
    if not shapes and not dims:
        dyn = symbolic_inputs(model)
        if dyn:
            name, dd = next(iter(dyn.items()))
            example = "x".join(str(d) if isinstance(d, int) else "1" for d in dd)
            free = sorted({d for d in dd if isinstance(d, str) and d != "?"})
            raise UsageError(
                f"model '{given}' input {name!r} has dynamic shape "
                f"({', '.join(map(str, dd))}); fix it with --input-shape {name}={example}"
                + (f" or --dim {free[0]}=1" if free else ""))
        return
    fixed = fix_input_shapes(model, shapes, dims)
    out = temp_dir("xflow-shapes-") / Path(given).name
    onnx.save(fixed, str(out))
    setattr(args, dest, str(out))
