r"""``fft``: convolution theorem — pointwise products in the 2-D Fourier domain.

With the zero-padded input :math:`x_p` (H_p × W_p) and the dilated kernel :math:`k` zero-extended to
the same size, cross-correlation is

.. math::
    y = \mathcal{F}^{-1}\Big[\sum_c \mathcal{F}(x_{p,c}) \cdot \overline{\mathcal{F}(k_{o,c})}\Big]

(circular, but exact on the valid region :math:`[0, H_p - d_h(k_h-1))`), then strided.
Cost :math:`O(N C H_p W_p \log(H_p W_p))` for the transforms plus one complex GEMM per frequency,
independent of the kernel size, so it pays for large kernels (e.g. AlexNet's 11×11 and 5×5).
Every configuration is supported; strides > 1 compute the full-resolution output and subsample.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from xflow.algsel.algorithms._base import ConvAlgorithm, add_bias, cached_transform, out_size

__all__ = ["FFT"]


class FFT(ConvAlgorithm):
    """``torch.fft.rfft2`` of input and kernel, complex channel contraction, ``irfft2``."""

    name = "fft"
    tolerance = 1e-4
    summary = "FFT convolution (rfft2, complex GEMM per frequency, irfft2)"

    def conv2d(self, x, weight, bias, stride, padding, dilation, groups, state=None) -> torch.Tensor:
        n, c, h, w = x.shape
        o, cg, kh, kw = weight.shape
        (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
        ho, wo = out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw)
        xp = F.pad(x, (pw, pw, ph, ph)) if (ph or pw) else x
        hp, wp = xp.shape[-2:]
        wf = wp // 2 + 1
        og = o // groups

        def kernel_spectrum() -> torch.Tensor:
            k = weight
            if (dh, dw) != (1, 1):  # dilate the kernel by inserting zeros
                k = weight.new_zeros(o, cg, dh * (kh - 1) + 1, dw * (kw - 1) + 1)
                k[:, :, ::dh, ::dw] = weight
            kf = torch.fft.rfft2(k, s=(hp, wp)).conj().reshape(groups, og, cg, hp * wf)
            return kf.permute(0, 3, 2, 1).contiguous()  # (g, freq, cg, og)

        kf = cached_transform(state, ("fft", hp, wp, dh, dw), weight, kernel_spectrum)
        xf = torch.fft.rfft2(xp).reshape(n, groups, cg, hp * wf).permute(1, 3, 0, 2)  # (g, freq, n, cg)
        yf = torch.matmul(xf.contiguous(), kf)  # one (n × cg)·(cg × og) complex GEMM per frequency
        yf = yf.permute(2, 0, 3, 1).reshape(n, o, hp, wf)
        y = torch.fft.irfft2(yf, s=(hp, wp))
        y = y[:, :, : sh * (ho - 1) + 1: sh, : sw * (wo - 1) + 1: sw]
        return add_bias(y.contiguous(), bias)
