"""Shared pieces of the ``xflow`` command line: the :class:`Report` a command returns,
``add_command`` (every subcommand gets ``--json`` / ``--debug``), and the validators every
command uses so that bad input fails *at parse time* with one line naming the problem and the fix.

A subcommand module (``xflow/<pkg>/cli.py``) exposes ``register(subparsers)`` and sets
``func=handler`` on its parsers; ``handler(args) -> Report``. The CLI prints ``report.text``, or
``json.dumps(report.data)`` as one strict JSON object on stdout with ``--json`` (non-finite
numbers become ``null`` with the reason under ``null_reasons``).

Validators (argparse ``type=`` callables, each error message says what is accepted):

* numbers: :func:`positive_int`, :func:`int_range`, :func:`finite_float`, :func:`threads`,
  :func:`workers`;
* names: :func:`device`, :func:`dataset_spec`;
* paths: :func:`existing_file`, :func:`output_path`, :func:`output_dir`;
* shapes: :func:`input_shape` (``NAME=1x3x224x224``) and :func:`dim_value` (``batch=1``).

Cross-flag checks run after parsing, before any work: :func:`add_output` (an output path that
may never be one of the inputs) and, one layer up because it reads the model,
:func:`xflow.graphs.model_args.add_onnx_input` (an ONNX model argument with ``--input-shape`` /
``--dim`` overrides for dynamic models).
:func:`refuse_overwrite` is the same check for paths a command derives at run time.
:func:`run_units` runs a multi-unit job (seeds, configs) saving each finished unit and resuming.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xflow import paths
from xflow.errors import XflowError
from xflow.results import git_sha, write_records
from xflow.safeio import same_file
from xflow.sweep import _fn_id, run_sweep

__all__ = [
    "Report", "add_command", "common_parser", "XflowParser", "UsageError",
    "positive_int", "int_range", "zero_or", "finite_float", "threads", "workers", "device", "dataset_spec", "name_list", "safe_name",
    "existing_file", "output_path", "output_dir", "input_shape", "dim_value",
    "add_check", "add_output", "refuse_overwrite", "run_checks",
    "json_safe", "run_units", "plus_minus", "temp_dir", "cleanup_temp",
]


@dataclass
class Report:
    """Result of a CLI command: machine-readable ``data`` and human-readable ``text``."""

    data: dict[str, Any] = field(default_factory=dict)
    text: str = ""


class UsageError(XflowError):
    """Bad command-line input found after parsing (e.g. an output path equal to an input)."""


# --------------------------------------------------------------------------------------------
# the parser


class XflowParser(argparse.ArgumentParser):
    """``ArgumentParser`` whose errors are one line and whose help shows every default.

    Subparsers inherit the class (argparse uses ``type(parent)``), so every ``xflow`` command
    gets both.
    """

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:  # noqa: D102
        action = super().add_argument(*args, **kwargs)
        _add_default_to_help(action)
        return action

    def error(self, message: str):  # noqa: D102 - one line, then exit 2
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _add_default_to_help(action: argparse.Action) -> None:
    """Append ``(default: X)`` to an option's help unless it already names its default."""
    if not action.option_strings or action.help == argparse.SUPPRESS:
        return
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction,  # noqa: SLF001
                           argparse._HelpAction, argparse._VersionAction)):  # noqa: SLF001
        return
    if action.default in (None, argparse.SUPPRESS) or action.default == []:
        return
    text = action.help or ""
    if "default" in text.lower():
        return
    action.help = (text + " " if text else "") + "(default: %(default)s)"


def common_parser(*, top_level: bool = False) -> argparse.ArgumentParser:
    """Parent parser holding the flags every subcommand accepts (``--json``, ``--debug``).

    The top-level parser owns their defaults; on subcommands they default to ``SUPPRESS`` so a
    flag given before the subcommand (``xflow --json zoo list``) is not reset after it.
    """
    p = argparse.ArgumentParser(add_help=False)
    default = False if top_level else argparse.SUPPRESS
    p.add_argument("--json", action="store_true", default=default,
                   help="print the results as one JSON object on stdout")
    p.add_argument("--debug", action="store_true", default=default, help="show tracebacks on errors")
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
    p.set_defaults(_prog=p.prog, _checks=())
    if handler is not None:
        p.set_defaults(func=handler)
    return p


# --------------------------------------------------------------------------------------------
# validators (argparse ``type=``)


def _named(fn: Callable, name: str) -> Callable:
    fn.__name__ = name
    return fn


def _parse_int(text: str) -> int:
    s = str(text).strip()
    if not re.fullmatch(r"[+-]?\d+", s):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    return int(s)


def int_range(lo: int | None = None, hi: int | None = None, *, hint: str = "") -> Callable[[str], int]:
    """An integer in ``[lo, hi]`` (either bound optional); ``hint`` is added to range errors."""

    def parse(text: str) -> int:
        v = _parse_int(text)
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            if lo is not None and hi is not None:
                want = f"between {lo} and {hi}"
            elif lo is not None:
                want = f"≥ {lo}"
            else:
                want = f"≤ {hi}"
            raise argparse.ArgumentTypeError(f"must be {want}, got {v}" + (f" ({hint})" if hint else ""))
        return v

    return _named(parse, "int")


def zero_or(parse_nonzero: Callable[[str], int]) -> Callable[[str], int]:
    """``0`` (meaning "off") or whatever ``parse_nonzero`` accepts (e.g. ``int_range(2, …)``)."""

    def parse(text: str) -> int:
        if str(text).strip() in ("0", "+0", "-0"):
            return 0
        try:
            return parse_nonzero(text)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentTypeError(f"{exc}; or 0 to turn it off") from None

    return _named(parse, "int")


def positive_int(maximum: int | None = None, *, hint: str = "") -> Callable[[str], int]:
    """An integer ≥ 1 (and ≤ ``maximum`` when given)."""
    return int_range(1, maximum, hint=hint)


def finite_float(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
                 hi_open: bool = False, hint: str = "") -> Callable[[str], float]:
    """A finite float (no nan/inf) within the optional bounds (``*_open``: bound excluded)."""

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        bad = ((lo is not None and (v < lo or (lo_open and v == lo)))
               or (hi is not None and (v > hi or (hi_open and v == hi))))
        if bad:
            parts = []
            if lo is not None:
                parts.append(f"{'>' if lo_open else '≥'} {lo:g}")
            if hi is not None:
                parts.append(f"{'<' if hi_open else '≤'} {hi:g}")
            raise argparse.ArgumentTypeError(f"must be {' and '.join(parts)}, got {v:g}"
                                             + (f" ({hint})" if hint else ""))
        return v

    return _named(parse, "float")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def threads(*, allow_zero: bool = False) -> Callable[[str], int]:
    """A thread count between 1 (0 when ``allow_zero``: "all cores"/"leave") and this machine's cores."""
    n = max(_cores(), 1)
    return int_range(0 if allow_zero else 1, n, hint=f"this machine has {n} CPU core(s)"
                     + ("; 0 = all" if allow_zero else ""))


def workers() -> Callable[[str], int]:
    """A worker count between 1 and this machine's cores."""
    n = max(_cores(), 1)
    return int_range(1, n, hint=f"this machine has {n} CPU core(s)")


def device(kinds: Sequence[str] = ("cpu", "cuda")) -> Callable[[str], str]:
    """A device name: ``cpu`` or ``cuda[:N]`` (restricted to ``kinds``)."""
    pattern = re.compile(r"(cpu|cuda)(:\d+)?")

    def parse(text: str) -> str:
        s = str(text).strip().lower()
        m = pattern.fullmatch(s)
        if not m or m.group(1) not in kinds or (m.group(1) == "cpu" and m.group(2)):
            forms = " or ".join("cuda[:N]" if k == "cuda" else k for k in kinds)
            raise argparse.ArgumentTypeError(f"unknown device {text!r}; use {forms}")
        return s

    return _named(parse, "device")


def dataset_spec(names: Iterable[str], synthetic: Iterable[str] = (), *, prefixes: Iterable[str] = (),
                 min_nodes: int = 16, max_nodes: int = 10_000_000) -> Callable[[str], str]:
    """A dataset name from ``names``, one starting with one of ``prefixes`` (e.g. ``ogbn-``) or a
    synthetic graph ``KIND:NODES[:AVG_DEGREE]``."""
    names, synthetic, prefixes = tuple(names), tuple(synthetic), tuple(prefixes)
    forms = ", ".join(names) + "".join(f", {p}<name>" for p in prefixes) + \
        "".join(f", {k}:<nodes>:<avg degree>" for k in synthetic)

    def parse(text: str) -> str:
        s = str(text).strip()
        if ":" not in s:
            if prefixes and s.lower().startswith(prefixes) and len(s) > min(map(len, prefixes)):
                return s.lower()
            if s.lower() not in names:
                raise argparse.ArgumentTypeError(f"unknown dataset {text!r}; use {forms}")
            return s.lower()
        kind, *rest = s.split(":")
        if kind.lower() not in synthetic:
            raise argparse.ArgumentTypeError(f"unknown synthetic graph kind {kind!r} in {text!r}; use {forms}")
        if not 1 <= len(rest) <= 2:
            raise argparse.ArgumentTypeError(f"synthetic dataset {text!r} must be {kind}:<nodes>[:<avg degree>]")
        try:
            n = float(rest[0])
            deg = float(rest[1]) if len(rest) > 1 else 10.0
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"synthetic dataset {text!r}: nodes and degree must be numbers, as in {kind}:2000:10") from None
        if not (math.isfinite(n) and n == int(n) and min_nodes <= n <= max_nodes):
            raise argparse.ArgumentTypeError(
                f"synthetic dataset {text!r}: nodes must be a whole number between {min_nodes} and {max_nodes}")
        if not (math.isfinite(deg) and 0 < deg < n):
            raise argparse.ArgumentTypeError(
                f"synthetic dataset {text!r}: average degree must be > 0 and below the node count")
        return s.lower()

    return _named(parse, "dataset")


def name_list(allowed: Sequence[str], *, min_items: int = 1) -> Callable[[str], str]:
    """A comma-separated list of names, each one of ``allowed`` (returned as given, normalized)."""

    def parse(text: str) -> str:
        items = [t.strip() for t in str(text).split(",") if t.strip()]
        bad = [t for t in items if t not in allowed]
        if bad:
            raise argparse.ArgumentTypeError(f"unknown name(s) {', '.join(map(repr, bad))}; choose from "
                                             f"{', '.join(allowed)} (comma-separated)")
        if len(items) < min_items:
            raise argparse.ArgumentTypeError(f"give at least {min_items} of {', '.join(allowed)}")
        return ",".join(items)

    return _named(parse, "names")


def safe_name(kind: str = "name") -> Callable[[str], str]:
    """A name used inside file names: letters, digits, ``_``, ``-``, ``.`` (no folders, no leading dot)."""

    def parse(text: str) -> str:
        s = str(text).strip()
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}", s):
            raise argparse.ArgumentTypeError(
                f"{kind} {text!r} may hold only letters, digits, '_', '-' and '.' (no '/'; at most 100 characters)")
        return s

    return _named(parse, "name")


def existing_file(kind: str = "file", *, nonempty: bool = True) -> Callable[[str], str]:
    """Path of an existing, readable (and, by default, non-empty) regular file."""

    def parse(text: str) -> str:
        p = Path(text).expanduser()
        if not p.exists():
            raise argparse.ArgumentTypeError(f"{kind} '{text}' does not exist (cwd is '{Path.cwd()}')")
        if p.is_dir():
            raise argparse.ArgumentTypeError(f"{kind} '{text}' is a folder, not a file")
        if not os.access(p, os.R_OK):
            raise argparse.ArgumentTypeError(f"{kind} '{text}' is not readable (check its permissions)")
        if nonempty and p.stat().st_size == 0:
            raise argparse.ArgumentTypeError(f"{kind} '{text}' is empty (0 bytes)")
        return str(text)

    return _named(parse, "path")


def _writable_target(p: Path) -> str | None:
    """Why ``p`` cannot be written (``None`` when it can): folders, permissions, missing parents."""
    if p.is_dir():
        return "is a folder; give a file name"
    if p.exists():
        return None if os.access(p, os.W_OK) else "exists and is not writable"
    anc = p.parent
    while not anc.exists():
        if anc.parent == anc:
            break
        anc = anc.parent
    if not anc.is_dir():
        return f"cannot be created: '{anc}' is a file, not a folder"
    if not os.access(anc, os.W_OK | os.X_OK):
        return f"cannot be created: folder '{anc}' is not writable"
    import tempfile

    try:  # the real test (root passes os.access everywhere; read-only mounts do not)
        with tempfile.TemporaryFile(dir=anc):
            pass
    except OSError as exc:
        return f"cannot be created: folder '{anc}' does not accept new files ({exc.strerror or exc})"
    return None


def output_path(kind: str = "output", *, suffixes: Sequence[str] = ()) -> Callable[[str], str]:
    """A file path that can be written (missing folders are created later); ``suffixes`` allowed."""

    def parse(text: str) -> str:
        if not str(text).strip():
            raise argparse.ArgumentTypeError(f"{kind} path is empty")
        p = Path(text).expanduser()
        if suffixes and p.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(
                f"{kind} '{text}' must end in {', '.join(suffixes[:-1]) + ' or ' if len(suffixes) > 1 else ''}"
                f"{suffixes[-1]}")
        why = _writable_target(p)
        if why:
            raise argparse.ArgumentTypeError(f"{kind} '{text}' {why}")
        return str(text)

    return _named(parse, "path")


def output_dir(kind: str = "output folder") -> Callable[[str], str]:
    """A folder that exists and is writable, or can be created."""

    def parse(text: str) -> str:
        p = Path(text).expanduser()
        if p.is_dir():
            why = _writable_target(p / ".xflow-write-test")
        elif p.exists():
            why = "is a file, not a folder"
        else:
            why = _writable_target(p)
        if why:
            raise argparse.ArgumentTypeError(f"{kind} '{text}' {why}")
        return str(text)

    return _named(parse, "path")


_SHAPE_RE = re.compile(r"\s*([^=\s][^=]*?)\s*=\s*(\d+(?:\s*[x,]\s*\d+)*)\s*")


def input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """``NAME=1x3x224x224`` (or ``NAME=1,3,224,224``) → ``(NAME, (1, 3, 224, 224))``."""
    m = _SHAPE_RE.fullmatch(str(text))
    if not m:
        raise argparse.ArgumentTypeError(f"expected INPUT=DxDx…, e.g. input=1x3x224x224, got {text!r}")
    dims = tuple(int(d) for d in re.split(r"\s*[x,]\s*", m.group(2)))
    if any(d < 1 for d in dims):
        raise argparse.ArgumentTypeError(f"every dimension in {text!r} must be ≥ 1")
    return m.group(1), dims


input_shape.__name__ = "shape"


def dim_value(text: str) -> tuple[str, int]:
    """``batch=1`` → ``('batch', 1)``: a value for a named free (symbolic) dimension."""
    name, sep, value = str(text).partition("=")
    if not sep or not name.strip() or not re.fullmatch(r"\s*\d+\s*", value) or int(value) < 1:
        raise argparse.ArgumentTypeError(f"expected DIM=N with N ≥ 1, e.g. batch=1, got {text!r}")
    return name.strip(), int(value)


dim_value.__name__ = "dim"


# --------------------------------------------------------------------------------------------
# checks run after parsing (cross-flag, before any work)


def add_check(parser: argparse.ArgumentParser, check: Callable[[argparse.Namespace], None]) -> None:
    """Run ``check(args)`` after parsing, before the handler; it raises :class:`UsageError`."""
    parser.set_defaults(_checks=(*(parser.get_default("_checks") or ()), check))


def run_checks(args: argparse.Namespace) -> None:
    """Run the checks :func:`add_check` registered on the chosen subcommand."""
    for check in getattr(args, "_checks", ()) or ():
        check(args)


def refuse_overwrite(outputs: Iterable[str | os.PathLike | None],
                     inputs: Iterable[str | os.PathLike | None], *, flag: str = "-o") -> None:
    """Raise :class:`UsageError` when an output path names the same file as an input.

    "Same" is after resolving symlinks (and hard links for existing files), so ``./m.onnx``,
    ``m.onnx`` and a link to it all count.
    """
    ins = [Path(i) for i in inputs if i]
    for out in outputs:
        if not out:
            continue
        for i in ins:
            if same_file(out, i):
                raise UsageError(f"{flag} '{out}' is the input file '{i}'; write to another path "
                                 "(xflow never overwrites its inputs)")


def add_output(parser: argparse.ArgumentParser, *flags: str, inputs: Sequence[str] = ("model",),
               kind: str = "output", suffixes: Sequence[str] = (), **kwargs: Any) -> argparse.Action:
    """Add an output-path option checked for writability and never equal to any of ``inputs``."""
    flags = flags or ("-o", "--output")
    action = parser.add_argument(*flags, type=output_path(kind, suffixes=suffixes), **kwargs)
    dest, flag = action.dest, action.option_strings[-1]

    def check(args: argparse.Namespace) -> None:
        given = getattr(args, "_given_paths", {})
        refuse_overwrite([getattr(args, dest, None)],
                         [given.get(i, getattr(args, i, None)) for i in inputs], flag=flag)

    add_check(parser, check)
    return action


_TEMP_DIRS: list[Path] = []


def temp_dir(prefix: str = "xflow-") -> Path:
    """A fresh temporary directory that :func:`cleanup_temp` removes when the command ends."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    _TEMP_DIRS.append(path)
    return path


def cleanup_temp() -> None:
    """Remove the temporary directories :func:`temp_dir` made (e.g. the shape-fixed copies of
    :func:`xflow.graphs.model_args.add_onnx_input`; called by ``main``)."""
    while _TEMP_DIRS:
        shutil.rmtree(_TEMP_DIRS.pop(), ignore_errors=True)


# --------------------------------------------------------------------------------------------
# output helpers


def json_safe(obj: Any, reasons: dict[str, str] | None = None, _path: str = "") -> Any:
    """``obj`` with every non-finite float replaced by ``None`` (reason recorded in ``reasons``).

    Numpy scalars and arrays become Python numbers and lists, paths and other objects strings,
    tuples and sets lists; ``reasons`` maps the dotted path of each nulled value to why.
    """
    if reasons is None:
        reasons = {}
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        reasons[_path or "value"] = f"not a finite number ({obj})"
        return None
    if isinstance(obj, Mapping):
        return {str(k): json_safe(v, reasons, f"{_path}.{k}" if _path else str(k)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [json_safe(v, reasons, f"{_path}[{i}]") for i, v in enumerate(obj)]
    item = getattr(obj, "item", None)  # numpy / torch scalars
    if callable(item) and getattr(obj, "ndim", 0) == 0:
        try:
            return json_safe(item(), reasons, _path)
        except (TypeError, ValueError):
            pass
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return json_safe(tolist(), reasons, _path)
    return str(obj)


def plus_minus(mean: float, std: float, n: int, fmt: str = "{:.2f}") -> str:
    """``mean ± std`` when ``n ≥ 2`` samples (a spread exists), else just ``mean`` (padded)."""
    m = fmt.format(mean)
    if n >= 2 and std == std:  # not NaN
        return f"{m} ± {fmt.format(std)}"
    return m


def run_units(fn: Callable[[dict], list[dict]], configs: Sequence[Mapping[str, Any]], *,
              name: str, save: bool, results_name: str | None = None, desc: str | None = None,
              progress: bool | None = None) -> tuple[list[dict], dict[str, Any]]:
    """Run ``fn`` on each config (one unit each, e.g. a seed) with a progress bar.

    With ``save``, each unit's records are appended to ``results/<results_name>/`` as soon as it
    finishes and the unit is cached (``<cache>/sweeps/<name>``), so an interrupted run keeps its
    finished units and the same command resumes with the rest. Without ``save`` the units run in
    order and nothing is written. Returns ``(records, info)`` with ``info`` holding
    ``saved`` (result part paths), ``resumed`` (units taken from the cache) and ``cache``.
    """
    info: dict[str, Any] = {"saved": [], "resumed": 0, "cache": None}
    if not save:
        from tqdm.auto import tqdm

        records: list[dict] = []
        bar = tqdm(configs, desc=desc or name, disable=None if progress is None else not progress,
                   leave=False)
        for cfg in bar:
            records.extend(fn(dict(cfg)))
        return records, info

    def on_result(h: str, cfg: dict, entry: dict) -> None:
        if entry.get("status") == "ok" and entry.get("records"):
            info["saved"].append(str(write_records(entry["records"], results_name or name)))

    fid, code = _fn_id(fn), git_sha()  # a unit is resumed only for the same function and commit

    def unit(cfg: dict) -> list[dict]:
        return fn({k: v for k, v in cfg.items() if k not in ("_unit_fn", "_code")})

    keyed = [{**cfg, "_unit_fn": fid, "_code": code} for cfg in configs]
    cache = paths.cache_dir("sweeps", name)
    info["cache"] = str(cache)
    res = run_sweep(unit, keyed, name=name, backend="local", cache=cache, on_result=on_result,
                    progress=progress, add_config=False, raise_failures=True, desc=desc)
    info["resumed"] = res.n_cached
    records = [{k: v for k, v in r.items() if k != "config_hash"} for r in res.records]
    return records, info
