"""ONNX Runtime harness: sessions, latency measurement, numeric equivalence, device descriptor."""
from xflow.runtime.device import DeviceInfo, cuda_available, describe_device

__all__ = ["DeviceInfo", "describe_device", "cuda_available"]
