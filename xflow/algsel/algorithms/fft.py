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

from xflow.algsel.algorithms._base import ConvAlgorithm, ConvGeometry, add_bias, cached_transform, pad_input

__all__ = ["FFT"]


class FFT(ConvAlgorithm):
    """``torch.fft.rfft2`` of input and kernel, complex channel contraction, ``irfft2``."""

    name = "fft"
    tolerance = 1e-4
    summary = "FFT convolution (rfft2, complex GEMM per frequency, irfft2)"

    def conv2d(self, x, weight, bias, stride, padding, dilation, groups, state=None) -> torch.Tensor:
        s = ConvGeometry.of(x, weight, stride, padding, dilation)
        n, o, cg, kh, kw, dh, dw = s.n, s.o, s.cg, s.kh, s.kw, s.dh, s.dw
        xp = pad_input(x, padding)
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
        y = y[:, :, : s.sh * (s.ho - 1) + 1: s.sh, : s.sw * (s.wo - 1) + 1: s.sw]
        return add_bias(y.contiguous(), bias)
