"""Devices and dtypes: the one place that turns a config string into a ``torch.device`` or ``torch.dtype``."""

from __future__ import annotations

import torch

from .config import ConfigError

PRIOR_DTYPES = {"auto": None, "fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
"""``prior_dtype`` values; ``auto`` is fp16 on CUDA and fp32 on the CPU (decided by the prior's loader)."""


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA if available, else CPU; an explicit ``cuda`` without a GPU fails naming the key."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} asked for, but no CUDA GPU is available (use device: cpu or auto)")
    return device
