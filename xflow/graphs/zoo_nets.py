"""Plain-torch networks of the model zoo that torchvision does not provide.

* :class:`BertEncoder` — a BERT-style Transformer encoder with *separate* Q/K/V projections
  (three ``MatMul``s on the same input per layer: the pattern TASO-style "merge sibling matmuls"
  rewrites look for).
* :class:`ViTEncoder` — a Vision Transformer (patch-embedding conv, pre-LN blocks with separate
  Q/K/V projections), the shape of X-RLflow's ``vit_base`` evaluation graph.
* :class:`NASRNN` — the NASNet recurrent cell (Zoph & Le, 2017) as used in the TASO/TENSAT
  benchmarks, unrolled over a sequence: per step 16 small ``MatMul``s and a tree of elementwise ops.
* :class:`InceptionToy` — Inception-A-like blocks (4 branches of unequal cost joined by Concat),
  and :class:`NasNetLike` — a NASNet/randomly-wired-style stack of cells, each combining the two
  previous cell outputs through several separable-conv/pool branches (the parallelizer's models).
* :class:`ResNeXtToy` — ResNeXt bottleneck blocks (1×1, grouped 3×3 with 4–8 channels per group,
  1×1, residual add) at small widths: a training model for grouped-conv rewrites whose shapes
  differ from ResNeXt-50's (held out from the RL policy's training set).
* :class:`TinyNet` — a 7-conv CNN covering the conv configuration space (3×3, 5×5, 1×1, stride 2,
  dilation, groups, depthwise, ``padding='same'``, reflect padding): algorithm selection's tests.

All use only static shapes (sizes come from the constructor, never from ``x.shape``) so the
exported ONNX graph has no ``Shape``/``Gather`` shape arithmetic.
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["BertEncoder", "BertLayer", "ViTEncoder", "ViTLayer", "NASRNN", "NASCell", "InceptionToy", "NasNetLike", "ResNeXtToy",
           "TinyNet"]


class BertLayer(nn.Module):
    r"""One post-LayerNorm Transformer encoder layer (BERT).

    .. math::
        A &= \mathrm{softmax}\big(Q K^\top / \sqrt{d_h}\big) V,\quad Q = XW_q, K = XW_k, V = XW_v \\
        H &= \mathrm{LN}(X + A W_o),\qquad Y = \mathrm{LN}\big(H + \mathrm{GELU}(H W_1) W_2\big)

    Args:
        hidden (int): model width :math:`d`.
        heads (int): attention heads (``hidden % heads == 0``), :math:`d_h = d / heads`.
        ffn (int): inner width of the feed-forward block.
        seq (int): sequence length (static, used for reshapes).

    Shapes:
        input / output: ``(batch, seq, hidden)``.
    """

    def __init__(self, hidden: int, heads: int, ffn: int, seq: int) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be divisible by heads ({heads})")
        self.hidden, self.heads, self.seq, self.dh = hidden, heads, seq, hidden // heads
        self.q = nn.Linear(hidden, hidden)
        self.k = nn.Linear(hidden, hidden)
        self.v = nn.Linear(hidden, hidden)
        self.o = nn.Linear(hidden, hidden)
        self.ln1 = nn.LayerNorm(hidden)
        self.ff1 = nn.Linear(hidden, ffn)
        self.ff2 = nn.Linear(ffn, hidden)
        self.ln2 = nn.LayerNorm(hidden)

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        return t.reshape(-1, self.seq, self.heads, self.dh).transpose(1, 2)  # (b, h, s, dh)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.q(x)), self._split(self.k(x)), self._split(self.v(x))
        att = torch.softmax(q @ k.transpose(-2, -1) * (1.0 / math.sqrt(self.dh)), dim=-1)
        ctx = (att @ v).transpose(1, 2).reshape(-1, self.seq, self.hidden)
        h = self.ln1(x + self.o(ctx))
        return self.ln2(h + self.ff2(torch.nn.functional.gelu(self.ff1(h))))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.hidden}, heads={self.heads})"


class BertEncoder(nn.Module):
    """A stack of :class:`BertLayer` on already-embedded tokens (``(batch, seq, hidden)`` floats).

    BERT-base is ``layers=12, hidden=768, heads=12, ffn=3072, seq=128``; the zoo default is smaller.
    """

    def __init__(self, layers: int = 2, hidden: int = 256, heads: int = 4, ffn: int | None = None,
                 seq: int = 64) -> None:
        super().__init__()
        ffn = ffn or 4 * hidden
        self.layers = nn.ModuleList(BertLayer(hidden, heads, ffn, seq) for _ in range(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class ViTLayer(nn.Module):
    r"""One pre-LayerNorm Transformer encoder block (ViT).

    .. math::
        H = X + \mathrm{MHA}(\mathrm{LN}(X)),\qquad Y = H + W_2\,\mathrm{GELU}(W_1\,\mathrm{LN}(H))

    with separate Q/K/V projections (sibling MatMuls on one input, as in X-RLflow's ``vit_base``
    TASO graph). Shapes: ``(batch, tokens, hidden)`` in and out; ``tokens`` static.
    """

    def __init__(self, hidden: int, heads: int, mlp: int, tokens: int) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be divisible by heads ({heads})")
        self.hidden, self.heads, self.tokens, self.dh = hidden, heads, tokens, hidden // heads
        self.ln1, self.ln2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.q, self.k, self.v, self.o = (nn.Linear(hidden, hidden) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(hidden, mlp), nn.Linear(mlp, hidden)

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        return t.reshape(-1, self.tokens, self.heads, self.dh).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln1(x)
        q, k, v = self._split(self.q(y)), self._split(self.k(y)), self._split(self.v(y))
        att = torch.softmax(q @ k.transpose(-2, -1) * (1.0 / math.sqrt(self.dh)), dim=-1)
        x = x + self.o((att @ v).transpose(1, 2).reshape(-1, self.tokens, self.hidden))
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.ln2(x))))


class ViTEncoder(nn.Module):
    """A Vision Transformer (Dosovitskiy et al., 2021): ``patch``×``patch`` patch embedding by a
    strided conv, a class token, learned position embeddings, ``layers`` :class:`ViTLayer` blocks,
    a final LayerNorm and a linear head on the class token. Input ``(batch, 3, image, image)``.

    ViT-Base is ``hidden=768, heads=12, mlp=3072, layers=12``; X-RLflow's ``vit_base`` graph has
    64 patches (``image=128, patch=16``); the zoo default keeps its widths with 2 layers.
    """

    def __init__(self, image_size: int = 128, patch: int = 16, hidden: int = 768, heads: int = 12,
                 mlp: int = 3072, layers: int = 2, classes: int = 1000) -> None:
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image_size ({image_size}) must be a multiple of patch ({patch})")
        self.patches = (image_size // patch) ** 2
        self.hidden = hidden
        self.embed = nn.Conv2d(3, hidden, patch, stride=patch)
        self.cls = nn.Parameter(torch.randn(1, 1, hidden) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, self.patches + 1, hidden) * 0.02)
        self.layers = nn.ModuleList(ViTLayer(hidden, heads, mlp, self.patches + 1) for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.embed(x).reshape(-1, self.hidden, self.patches).transpose(1, 2)
        # the class token: a zero row in front (static Pad, no batch-size Shape ops) plus the learned
        # token added with the position embeddings, which is ViT's concat(cls, t) + pos
        t = torch.nn.functional.pad(t, (0, 0, 1, 0))
        cls_row = torch.nn.functional.pad(self.cls, (0, 0, 0, self.patches))
        t = t + (self.pos + cls_row)
        for layer in self.layers:
            t = layer(t)
        return self.head(self.norm(t)[:, 0])


class NASCell(nn.Module):
    r"""The NASNet RNN cell: 8 gates :math:`t_i = x W_i + h U_i`, combined by a fixed tree.

    .. math::
        m_0 &= \mathrm{relu}(t_0) + \sigma(t_3),\quad m_1 = \sigma(t_1) + \tanh(t_2),\quad
        m_2 = \sigma(t_4)\,\tanh(t_5),\quad m_3 = \sigma(t_6)\,\mathrm{relu}(t_7) \\
        m_4 &= \sigma(m_1) + \tanh(m_2),\quad m_5 = \tanh(m_0)\tanh(m_3),\quad
        h' = \tanh\big(\tanh(m_4)\tanh(m_5)\big)

    (the TASO ``nasrnn`` benchmark's node; 16 ``MatMul`` of ``(b, d) × (d, d)`` per step).
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.wx = nn.ModuleList(nn.Linear(hidden, hidden, bias=False) for _ in range(8))
        self.wh = nn.ModuleList(nn.Linear(hidden, hidden, bias=False) for _ in range(8))

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        t = [wx(x) + wh(h) for wx, wh in zip(self.wx, self.wh)]
        m0 = torch.relu(t[0]) + torch.sigmoid(t[3])
        m1 = torch.sigmoid(t[1]) + torch.tanh(t[2])
        m2 = torch.sigmoid(t[4]) * torch.tanh(t[5])
        m3 = torch.sigmoid(t[6]) * torch.relu(t[7])
        m4 = torch.sigmoid(m1) + torch.tanh(m2)
        m5 = torch.tanh(m0) * torch.tanh(m3)
        return torch.tanh(torch.tanh(m4) * torch.tanh(m5))


class NASRNN(nn.Module):
    """:class:`NASCell` unrolled over ``seq`` steps; input ``(batch, seq, hidden)``, output the last state.

    The initial state is a learned ``(1, hidden)`` parameter (as in TASO), broadcast over the batch.
    """

    def __init__(self, hidden: int = 512, seq: int = 5) -> None:
        super().__init__()
        self.seq = seq
        self.cell = NASCell(hidden)
        self.h0 = nn.Parameter(torch.randn(1, hidden) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.h0
        for step in torch.unbind(x, dim=1)[: self.seq]:
            h = self.cell(step, h)
        return h


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


class _ResNeXtBlock(nn.Module):
    r"""ResNeXt bottleneck: :math:`y = \mathrm{relu}(x' + \mathrm{BN}(W_3 * \mathrm{relu}(\mathrm{BN}(
    W_2 *_{g} \mathrm{relu}(\mathrm{BN}(W_1 * x))))))` with a grouped 3×3 :math:`W_2` of ``groups``
    groups and :math:`x'` the input or its strided 1×1 projection."""

    def __init__(self, cin: int, width: int, cout: int, groups: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _cbr(cin, width),
            nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.short = (nn.Identity() if stride == 1 and cin == cout else
                      nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.short(x))


class ResNeXtToy(nn.Module):
    """Stem (3×3 stride-2 conv, max pool) + ResNeXt bottleneck blocks + global pool + linear head.

    One block of bottleneck width ``width`` with ``groups`` groups, then ``blocks - 1`` blocks of
    width ``2 * width`` (same groups) after a stride-2 block. The defaults put 32 groups of 4 and
    of 8 channels at 28×28 and 14×14 for a 112×112 input (ResNeXt-50's layer1/layer2: 32 groups of
    4 and 8 at 56×56 and 28×28), so the grouped-conv rewrites have sites with other shapes than
    ResNeXt-50's.
    """

    def __init__(self, stem: int = 64, width: int = 128, groups: int = 32, blocks: int = 3,
                 classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(_cbr(3, stem, 3, 2, 1), nn.MaxPool2d(3, 2, 1))
        layers, cin = [], stem
        for i in range(blocks):
            w = width if i == 0 else 2 * width
            layers.append(_ResNeXtBlock(cin, w, 2 * w, groups, 2 if i == 1 else 1))
            cin = 2 * w
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        x = self.blocks(self.stem(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class TinyNet(nn.Module):
    """A 7-conv CNN covering the configuration space (3×3, 5×5, 1×1, stride 2, dilation, groups,
    depthwise, ``padding='same'``, reflect padding), with a max and an average pooling and a linear
    head (for tests and quick demos)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
            nn.Conv2d(8, 16, 5, stride=2, padding=2), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=2, dilation=2, groups=4), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), nn.ReLU(),
            nn.Conv2d(16, 24, 1), nn.ReLU(),
            nn.Conv2d(24, 24, 3, padding="same"), nn.ReLU(),
            nn.Conv2d(24, 32, 3, padding=1, padding_mode="reflect"), nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1), nn.AvgPool2d(2, ceil_mode=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))
