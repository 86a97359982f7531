"""Which GPU kernels the prior's expensive calls spend their time in, and at what throughput.

    python benchmarks/prior_profile.py [--parts unet_b4,unet_b8,encoder_b4,decoder_b8] [--compile [MODE]] [--json OUT]

SD 2.1-base architectures with random weights, fp16, the parts of ``prior_kernels.py``. For each part: the CUDA-event median of ``--iters`` calls, the FLOPs of one call
(``torch.utils.flop_counter``: convolutions, matrix products and attention; the backward counts only the
input gradient the prior needs), the achieved TFLOP/s, and the profiler's kernel time per call grouped
into convolution / matmul / attention / normalization / elementwise / layout copies, plus the top kernels
verbatim in the JSON. This is the evidence behind the "measured floor" in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import torch
from bench_common import Column, add_compile_option, machine, median_cuda_ms, report
from prior_kernels import PARTS
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from segmentdreamer.testing.tiny_models import full_size_stable_diffusion

CATEGORIES = (  # first match wins: cuDNN convolution kernels are implicit GEMMs, so they come before matmul
    ("attention", ("flash", "fmha", "attention", "mem_eff")),
    ("convolution", ("conv", "fprop", "dgrad", "wgrad", "implicit", "winograd")),
    ("matmul", ("gemm", "cutlass", "matmul", "xmma", "cublas", "sm90_")),
    ("normalization", ("norm", "moments", "welford", "rowwise")),
    ("layout_copy", ("nchwtonhwc", "nhwctonchw", "transpose", "copy", "memcpy", "memset")),
)
GROUPS = tuple(name for name, _ in CATEGORIES) + ("elementwise",)


def category(kernel: str) -> str:
    name = kernel.lower()
    for group, needles in CATEGORIES:
        if any(needle in name for needle in needles):
            return group
    return "elementwise"


def flops(call) -> int:
    with FlopCounterMode(display=False) as counter:
        call()
    return counter.get_total_flops()


def kernel_times(call, calls: int) -> tuple[dict[str, float], list[dict]]:
    """Kernel milliseconds per call by group, and the top 12 kernels (name, group, ms per call, launches per call)."""
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(calls):
            call()
        torch.cuda.synchronize()
    groups: dict[str, float] = defaultdict(float)
    kernels = []
    for event in prof.key_averages():
        if event.device_type != DeviceType.CUDA or event.self_device_time_total <= 0:
            continue
        ms = event.self_device_time_total / 1000.0 / calls
        groups[category(event.key)] += ms
        kernels.append({"kernel": event.key[:160], "group": category(event.key), "ms": ms, "launches": event.count / calls})
    kernels.sort(key=lambda k: -k["ms"])
    return {group: groups.get(group, 0.0) for group in GROUPS}, kernels[:12]


def measure(prior, part: str, tflop: float, warmup: int, iters: int) -> dict:
    call = PARTS[part](prior)
    ms = median_cuda_ms(call, warmup, iters)
    groups, top = kernel_times(call, calls=5)
    row = {"part": part, "ms": ms, "tflop": tflop, "tflop_per_s": tflop / (ms / 1000.0),
           "kernel_ms": sum(groups.values()), **{f"{g}_ms": v for g, v in groups.items()}, "top_kernels": top}
    print(f"{part}: {ms:.1f} ms, {tflop:.2f} TFLOP, {row['tflop_per_s']:.0f} TFLOP/s", flush=True)
    for kernel in top[:6]:
        print(f"    {kernel['ms']:7.2f} ms  x{kernel['launches']:<5.0f} {kernel['group']:<14} {kernel['kernel'][:100]}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS))
    add_compile_option(parser)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    prior = full_size_stable_diffusion("cuda", torch.float16)
    parts = args.parts.split(",")
    # FLOPs first, on the eager prior: compiled code run once under FlopCounterMode (a dispatch mode) was seen to
    # stay eager afterwards, which would time the eager UNet as the compiled one
    tflops = {part: flops(PARTS[part](prior)) / 1e12 for part in parts}
    if args.compile:
        prior.compile(args.compile)
    rows = [measure(prior, part, tflops[part], args.warmup, args.iters) for part in parts]
    columns = [Column("part", "part", "{}", 12), Column("ms", "ms", width=8), Column("tflop", "TFLOP", "{:.2f}", 8),
               Column("tflop_per_s", "TFLOP/s", "{:.0f}", 9)]
    columns += [Column(f"{g}_ms", g[:11], width=12) for g in GROUPS]
    variant = f"compiled ({args.compile})" if args.compile else "eager"
    report(f"{machine()}; fp16, prior {variant}; ms per call, kernel ms by group from torch.profiler", columns, rows, args.json)


if __name__ == "__main__":
    main()
