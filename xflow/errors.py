"""Typed errors: each names the problem and says what to do.

Library code raises these instead of letting a crash surface deep inside ONNX, ONNX Runtime,
torch or PyG. The CLI prints ``str(err)`` to stderr and exits non-zero.
"""
from __future__ import annotations

__all__ = [
    "XflowError",
    "ModelLoadError",
    "ModelFileNotFound",
    "EmptyModelFile",
    "MalformedModel",
    "InvalidModel",
    "UnsupportedOperator",
    "UnsupportedOpset",
    "DynamicShapeError",
    "ShapeMismatch",
    "DatasetNotFound",
    "RewriteVerificationError",
    "UnknownName",
    "GraphvizMissing",
    "UnsupportedLowering",
    "DeviceUnavailable",
    "ExportError",
]


class XflowError(Exception):
    """Base class of every error xflow raises on purpose."""


class ModelLoadError(XflowError):
    """An ONNX model could not be loaded."""


class ModelFileNotFound(ModelLoadError, FileNotFoundError):
    """The model path does not exist."""


class EmptyModelFile(ModelLoadError):
    """The model file (or byte string) is empty."""


class MalformedModel(ModelLoadError):
    """The bytes are not a parseable ONNX ModelProto (random bytes, truncated file)."""


class InvalidModel(ModelLoadError):
    """The model parses but fails ``onnx.checker`` or shape inference."""


class UnsupportedOperator(XflowError):
    """An operator (or operator domain) that xflow cannot handle."""


class UnsupportedOpset(ModelLoadError):
    """The model's opset is too old (or too new) and cannot be converted."""


class DynamicShapeError(XflowError):
    """A graph input has an unresolved symbolic dimension."""


class ShapeMismatch(XflowError, ValueError):
    """A tensor has the wrong shape for the operation it is given to."""


class DatasetNotFound(XflowError, FileNotFoundError):
    """A dataset is in none of the search locations and could not be downloaded."""


class RewriteVerificationError(XflowError):
    """A graph rewrite changed the model's outputs and was rejected."""


class UnknownName(XflowError, KeyError):
    """A name (model, rule, algorithm, strategy…) that is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain text
        return str(self.args[0]) if self.args else ""


class GraphvizMissing(XflowError):
    """The Graphviz ``dot`` binary is not installed."""


class UnsupportedLowering(XflowError, ValueError):
    """A lowering option that the chosen backend or plan cannot run (the message names the fix)."""


class DeviceUnavailable(XflowError):
    """A requested device (e.g. ``cuda``) is not available here."""


class ExportError(XflowError):
    """A torch model could not be exported to ONNX, or the export disagrees with torch."""
