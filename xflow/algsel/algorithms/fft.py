r"""``fft``: convolution theorem — pointwise products in the 2-D Fourier domain.

With the zero-padded input :math:`x_p` (H_p × W_p) and the dilated kernel :math:`k` zero-extended to
the same size, cross-correlation is

.. math::
    y = \mathcal{F}^{-1}\Big[\sum_c \mathcal{F}(x_{p,c}) \cdot \overline{\mathcal{F}(k_{o,c})}\Big]

(circular, but exact on the valid region :math:`[0, H_p - d_h(k_h-1))`), then strided.
Cost :math:`O(N C H_p W_p \log(H_p W_p))` for the transforms plus one complex GEMM per frequency,
independent of the kernel size, so it pays for large kernels (e.g. AlexNet's 11×11 and 5×5).
Every configuration is supported; strides > 1 compute the full-resolution output and subsample.

**Memory.** The kernel spectrum is :math:`O \cdot C/g \cdot H_p (W_p/2+1)` complex numbers — for
VGG16's 512→512 layers at 28×28 that is 1.0 GB, 100× the layer's weight (9.4 MB). A spectrum up
to ``max_cached_bytes`` is kept per layer (:func:`cached_transform`); a larger one is never kept:
it is computed on every call in blocks of output channels of at most ``block_bytes`` each, so
the peak stays bounded (and the call is slower, which the autotuner sees).
"""
from __future__ import annotations

import torch

from xflow.algsel.algorithms._base import (
    ConvAlgorithm,
    ConvConfig,
    ConvGeometry,
    MemoryUse,
    add_bias,
    cached_transform,
    pad_input,
)

__all__ = ["FFT"]

_COMPLEX = 8  # bytes of a complex64


class FFT(ConvAlgorithm):
    """``torch.fft.rfft2`` of input and kernel, complex channel contraction, ``irfft2``."""

    name = "fft"
    tolerance = 1e-4
    summary = "FFT convolution (rfft2, complex GEMM per frequency, irfft2); spectra cached up to a bound"

    def __init__(self, max_cached_bytes: int = 256 << 20, block_bytes: int = 64 << 20) -> None:
        self.max_cached_bytes = int(max_cached_bytes)
        self.block_bytes = int(block_bytes)

    @staticmethod
    def spectrum_bytes(config: ConvConfig, input_shape: tuple[int, ...]) -> int:
        """Bytes of the full kernel spectrum of ``config`` on ``input_shape``."""
        s = ConvGeometry.from_config(config, input_shape)
        hp, wp = s.h + 2 * s.ph, s.w + 2 * s.pw
        return s.o * s.cg * hp * (wp // 2 + 1) * _COMPLEX

    def memory(self, config: ConvConfig, input_shape: tuple[int, ...], itemsize: int = 4) -> MemoryUse:
        s = ConvGeometry.from_config(config, input_shape)
        hp, wp = s.h + 2 * s.ph, s.w + 2 * s.pw
        freq = hp * (wp // 2 + 1)
        spec = self.spectrum_bytes(config, input_shape)
        io = (s.n * s.c + 2 * s.n * s.o) * freq * _COMPLEX  # input spectrum, output spectrum (+ its copy)
        if spec <= self.max_cached_bytes:
            return MemoryUse(spec, io)
        return MemoryUse(0, io + min(spec, self.block_bytes))

    def _spectrum(self, weight: torch.Tensor, groups: int, hp: int, wp: int, dilation, j0: int = 0,
                  j1: int | None = None) -> torch.Tensor:
        """Conjugate kernel spectrum of output channels ``[j0, j1)`` of every group: (g, freq, C/g, ob)."""
        o, cg, kh, kw = weight.shape
        og = o // groups
        j1 = og if j1 is None else j1
        dh, dw = dilation
        k = weight.view(groups, og, cg, kh, kw)[:, j0:j1]
        if (dh, dw) != (1, 1):  # dilate the kernel by inserting zeros
            kd = k.new_zeros(groups, j1 - j0, cg, dh * (kh - 1) + 1, dw * (kw - 1) + 1)
            kd[..., ::dh, ::dw] = k
            k = kd
        kf = torch.fft.rfft2(k, s=(hp, wp)).conj().reshape(groups, j1 - j0, cg, -1)
        return kf.permute(0, 3, 2, 1).contiguous()

    def conv2d(self, x, weight, bias, stride, padding, dilation, groups, state=None) -> torch.Tensor:
        s = ConvGeometry.of(x, weight, stride, padding, dilation)
        n, o, cg = s.n, s.o, s.cg
        xp = pad_input(x, padding)
        hp, wp = xp.shape[-2:]
        wf = wp // 2 + 1
        og = o // groups
        xf = torch.fft.rfft2(xp).reshape(n, groups, cg, hp * wf).permute(1, 3, 0, 2).contiguous()  # (g, freq, n, cg)
        full = o * cg * hp * wf * _COMPLEX
        if full <= self.max_cached_bytes:
            kf = cached_transform(state, ("fft", hp, wp, tuple(dilation), groups), weight,
                                  lambda wt: self._spectrum(wt, groups, hp, wp, dilation))
            yf = torch.matmul(xf, kf)  # one (n × cg)·(cg × og) complex GEMM per frequency
        else:  # bounded: spectra of output-channel blocks, computed per call, never kept
            per_channel = groups * cg * hp * wf * _COMPLEX
            step = max(1, min(og, self.block_bytes // max(1, per_channel)))
            yf = torch.cat([torch.matmul(xf, self._spectrum(weight, groups, hp, wp, dilation, j, min(og, j + step)))
                            for j in range(0, og, step)], dim=-1)
        yf = yf.permute(2, 0, 3, 1).reshape(n, o, hp, wf)
        y = torch.fft.irfft2(yf, s=(hp, wp))
        y = y[:, :, : s.sh * (s.ho - 1) + 1: s.sh, : s.sw * (s.wo - 1) + 1: s.sw]
        return add_bias(y.contiguous(), bias)
