"""Small branchy networks for tests, the benchmark and the notebook, and ONNX export helpers.

* :class:`InceptionToy` — Inception-A-like blocks (4 branches of unequal cost joined by Concat).
* :class:`NasNetLike` — a NASNet/randomly-wired-style stack of cells, each cell combining the two
  previous cell outputs through several separable-conv/pool branches (many branches, few cuts).
* :func:`export_onnx` — export any module at batch 1 with the TorchScript exporter (cached by
  a hash of the weights and config); :func:`benchmark_model` returns the ONNX path of a named
  benchmark model, using ``xflow.graphs.zoo`` when it is available.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

import torch
from torch import nn

__all__ = ["InceptionToy", "NasNetLike", "export_onnx", "benchmark_model", "BENCH_MODELS",
           "torch_benchmark_model"]


def _cbr(cin: int, cout: int, k: int = 1, s: int = 1, p: int = 0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, p, bias=False), nn.BatchNorm2d(cout), nn.ReLU())


class _InceptionBlock(nn.Module):
    def __init__(self, cin: int, w: int) -> None:
        super().__init__()
        self.b1 = _cbr(cin, w)
        self.b2 = nn.Sequential(_cbr(cin, w), _cbr(w, w, 3, 1, 1))
        self.b3 = nn.Sequential(_cbr(cin, w), _cbr(w, w, 3, 1, 1), _cbr(w, w, 3, 1, 1))
        self.b4 = nn.Sequential(nn.AvgPool2d(3, 1, 1), _cbr(cin, w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


class InceptionToy(nn.Module):
    """Stem conv + ``blocks`` Inception-A-like blocks + global pool + linear head."""

    def __init__(self, width: int = 16, blocks: int = 2, classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(_cbr(3, 4 * width, 3, 2, 1), nn.MaxPool2d(3, 2, 1))
        self.blocks = nn.Sequential(*[_InceptionBlock(4 * width, width) for _ in range(blocks)])
        self.head = nn.Linear(4 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class _SepConv(nn.Module):
    def __init__(self, c: int, k: int) -> None:
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, k, 1, k // 2, groups=c, bias=False),
                                nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class _Cell(nn.Module):
    """NASNet-style normal cell: 5 pairwise combinations of the two inputs, concatenated."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.pre0 = _cbr(4 * c, c)
        self.pre1 = _cbr(4 * c, c)
        self.s0 = _SepConv(c, 5)
        self.s1 = _SepConv(c, 3)
        self.s2 = _SepConv(c, 5)
        self.s3 = _SepConv(c, 3)
        self.pool = nn.AvgPool2d(3, 1, 1)
        self.s4 = _SepConv(c, 3)

    def forward(self, h0: torch.Tensor, h1: torch.Tensor) -> torch.Tensor:
        a, b = self.pre0(h0), self.pre1(h1)
        y0 = self.s0(b) + self.s1(a)
        y1 = self.s2(a) + self.s3(a)
        y2 = self.pool(b) + a
        y3 = self.s4(y0) + self.pool(a)
        return torch.cat([y0, y1, y2, y3], 1)


class NasNetLike(nn.Module):
    """Stem + ``cells`` NASNet-like cells wired to the two previous cells + head."""

    def __init__(self, c: int = 24, cells: int = 4, classes: int = 10) -> None:
        super().__init__()
        self.stem = _cbr(3, 4 * c, 3, 2, 1)
        self.cells = nn.ModuleList([_Cell(c) for _ in range(cells)])
        self.head = nn.Linear(4 * c, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h0 = h1 = self.stem(x)
        for cell in self.cells:
            h0, h1 = h1, cell(h0, h1)
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(h1, 1), 1))


def export_onnx(module: nn.Module, example: tuple[torch.Tensor, ...], name: str,
                opset: int = 17) -> Path:
    """Export ``module`` (eval mode) to ONNX at the example's fixed shapes; cached by content."""
    from xflow.paths import cache_dir

    module = module.eval()
    h = hashlib.sha256()
    h.update(name.encode())
    for t in list(module.state_dict().values()) + list(example):
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().float().contiguous().numpy().tobytes()[:4096])
    path = cache_dir("parallel", "onnx") / f"{name}_{h.hexdigest()[:12]}.onnx"
    from xflow.safeio import atomic_write_bytes, verify_checksum, write_checksum

    if not verify_checksum(path):  # missing, or truncated/modified (reported and removed): export
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, example, buf, dynamo=False, opset_version=opset,
                              input_names=[f"input{i}" for i in range(len(example))],
                              output_names=["output"])
        atomic_write_bytes(path, buf.getvalue())
        write_checksum(path)
    return path


BENCH_MODELS = ("inception_v3", "googlenet", "squeezenet1_1", "resnet50", "nasnet_like", "inception_toy")


_ZOO_RES = {"inception_v3": (299, 139), "googlenet": (224, 112), "squeezenet1_1": (224, 112),
            "resnet50": (224, 112)}


def _zoo():
    try:
        from xflow.graphs import zoo

        zoo.list_models()
        return zoo
    except Exception:  # noqa: BLE001 - zoo not available in this checkout: use torchvision directly
        return None


def torch_benchmark_model(name: str, *, quick: bool = False) -> tuple[nn.Module, tuple[torch.Tensor, ...]]:
    """A benchmark model (random, deterministic weights, eval mode) and its batch-1 input.

    ``quick`` shrinks the input resolution (and the toy models) so a full pass takes milliseconds.
    The torchvision models come from ``xflow.graphs.zoo`` when it is available.
    """
    if name in _ZOO_RES:
        res = _ZOO_RES[name][1 if quick else 0]
        zoo = _zoo()
        if zoo is not None and name in zoo.list_models():
            return zoo.torch_model(name, image_size=res).eval(), zoo.example_input(name, image_size=res)
        import torchvision

        torch.manual_seed(0)
        kw = {"aux_logits": False, "init_weights": True} if name in ("inception_v3", "googlenet") else {}
        m = getattr(torchvision.models, name)(weights=None, **kw)
        return m.eval(), (torch.randn(1, 3, res, res, generator=torch.Generator().manual_seed(1)),)
    torch.manual_seed(0)
    if name == "nasnet_like":
        m, res = NasNetLike(c=16 if quick else 32, cells=4 if quick else 6), (64 if quick else 112)
    elif name == "inception_toy":
        m, res = InceptionToy(width=16, blocks=2), (32 if quick else 64)
    else:
        from xflow.errors import UnknownName

        raise UnknownName(f"unknown benchmark model {name!r}; choose one of {', '.join(BENCH_MODELS)}")
    return m.eval(), (torch.randn(1, 3, res, res, generator=torch.Generator().manual_seed(1)),)


def benchmark_model(name: str, *, quick: bool = False) -> Path:
    """ONNX file of a benchmark model at batch 1 (exported once, cached; zoo export when available)."""
    zoo = _zoo()
    if name in _ZOO_RES and zoo is not None and name in zoo.list_models():
        return zoo.export(name, image_size=_ZOO_RES[name][1 if quick else 0])
    m, x = torch_benchmark_model(name, quick=quick)
    return export_onnx(m, x, f"{name}{'_quick' if quick else ''}")
