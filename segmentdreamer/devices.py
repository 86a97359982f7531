"""Devices and dtypes: the one place that turns a config string into a ``torch.device`` or ``torch.dtype``."""

from __future__ import annotations

import torch

from .config import ConfigError

PRIOR_DTYPES = {"auto": None, "fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
"""``prior_dtype`` values; ``auto`` is fp16 on CUDA and fp32 on the CPU (decided by the prior's loader)."""

_assigned_gpu: torch.device | None = None


def assign_gpu(index: int) -> torch.device:
    """Make ``cuda:index`` what ``auto`` and ``cuda`` mean in this process (the GPU slot a job claimed).

    Also the current CUDA device, so kernels and generators that take no device argument land there too.
    """
    global _assigned_gpu
    _assigned_gpu = torch.device("cuda", index)
    torch.cuda.set_device(_assigned_gpu)
    return _assigned_gpu


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA if available, else CPU; an explicit ``cuda`` without a GPU fails naming the key.

    ``auto`` and a bare ``cuda`` give the GPU :func:`assign_gpu` set (a workflow job's slot, ``gpu_slots``);
    ``cuda:N`` is taken as written.
    """
    if name in ("auto", "cuda") and _assigned_gpu is not None:
        return _assigned_gpu
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} asked for, but no CUDA GPU is available (use device: cpu or auto)")
    return device
