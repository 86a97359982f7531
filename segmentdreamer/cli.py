"""The ``segmentdreamer`` command line: one verb per pipeline step (the workflow's rules call these).

``segmentdreamer --help`` lists the verbs with one line each (the ``help=`` of each parser below);
``segmentdreamer VERB --help`` gives a verb's options, each numeric one with its range (:func:`bounded`).
Errors about what the user handed over (a config key, a prompt file, weights, a .ply) print one line naming
it and exit with 2; a diverged run exits with 3.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Sequence

log = logging.getLogger("segmentdreamer")


def _make_tiny_models(args: argparse.Namespace) -> int:
    from .testing.tiny_models import make_tiny_models

    start = time.perf_counter()
    written = make_tiny_models(args.dir)
    for key, folder in written.items():
        log.info("%s -> %s", key, folder)
    log.info("tiny models written in %.1f s (random weights: plumbing only, never quality)", time.perf_counter() - start)
    return 0


def _init(args: argparse.Namespace) -> int:
    import torch

    from .devices import resolve_device
    from .init import PointE, PointESampling, pointe_frame, points_to_gaussians
    from .init.cache import cached_cloud
    from .init.pointe import checkpoint_paths
    from .prompts import lookup
    from .scene.gaussians import from_points, save_ply, sphere_points

    entry = lookup(args.prompts, args.prompt_id)
    seed = entry.seed if args.seed is None else args.seed
    if args.method == "sphere":
        params = from_points(sphere_points(generator=torch.Generator().manual_seed(seed)))
    else:
        checkpoint_paths(args.pointe)  # fail before loading anything heavy

        def sample():
            model = PointE.from_folder(args.pointe, args.pointe_clip, device=resolve_device(args.device))
            model.sampling = PointESampling(steps=args.steps)
            return model.sample(entry.init_prompt, seed)

        xyz, _ = cached_cloud(args.cache, entry.init_prompt, seed, sample, steps=args.steps)
        params = points_to_gaussians(pointe_frame(xyz), seed=seed, copies=args.copies)
    save_ply(params, args.out)
    log.info("%s: %d Gaussians (%s init, %r, seed %d) -> %s", entry.prompt_id, params["means"].shape[0], args.method,
             entry.init_prompt, seed, args.out)
    return 0


def _train(args: argparse.Namespace) -> int:
    from .config import ConfigError, load_config
    from .training.divergence import TrainingDiverged
    from .training.trainer import Trainer

    if len(args.config) != len(args.out):
        raise ConfigError(f"train: {len(args.config)} --config but {len(args.out)} --out: give one output folder per config")
    if args.planned:
        from .plan.stamp import check_planned

        for path in args.config:
            check_planned(path)
    configs = [load_config(path, overrides=args.set or []) for path in args.config]
    if len(configs) > 1:
        from .training.multi_asset import train_assets

        if args.log and len(args.log) != len(configs):
            raise ConfigError(f"train: {len(configs)} --config but {len(args.log)} --log: give one log file per config, or none")
        errors = train_assets(configs, args.out, resume=args.resume, log_files=args.log)
        failed = [f"{out}: {error}" for out, error in zip(args.out, errors) if error is not None]
        log.log(logging.ERROR if failed else logging.INFO, "%d of %d assets trained%s", len(configs) - len(failed), len(configs),
                "".join(f"\n  FAILED {line}" for line in failed))
        return 0 if not any(errors) else 3 if all(isinstance(e, TrainingDiverged) for e in errors if e) else 1
    try:
        ply = Trainer(configs[0], args.out[0]).run(resume=args.resume)
    except TrainingDiverged as error:
        log.error("%s", error)
        return 3
    log.info("wrote %s", ply)
    return 0


def _render(args: argparse.Namespace) -> int:
    from .devices import resolve_device
    from .scene.turntable import BlankRenderError, render_ring

    try:
        paths = render_ring(args.ply, args.out, views=args.views, resolution=args.resolution, elevation_deg=args.elevation,
                            device=resolve_device(args.device), video=None if args.no_video else args.video)
    except BlankRenderError as error:
        log.error("%s", error)
        return 3
    log.info("wrote %d views to %s", len(paths), args.out)
    return 0


def _view(args: argparse.Namespace) -> int:
    from .viewer import serve

    try:
        serve(args.path, host=args.host, port=args.port, timeout=args.timeout, device=args.device)
    except FileNotFoundError as error:
        log.error("%s", error)
        return 2
    return 0


def _export_mesh(args: argparse.Namespace) -> int:
    from .export.mesh import MESH_SUFFIXES, EmptyMeshError, MeshSettings, export_mesh

    if not args.out.lower().endswith(MESH_SUFFIXES):
        log.error("--out %s: the mesh format must be one of %s", args.out, ", ".join(MESH_SUFFIXES))
        return 2
    try:
        settings = MeshSettings(resolution=args.resolution, level=args.level, keep_largest=not args.all_components,
                                y_up=not args.z_up, faint_fraction=args.faint_fraction)
        summary = export_mesh(args.ply, args.out, settings)
    except ValueError as error:
        log.error("%s", error)
        return 2
    except EmptyMeshError as error:
        log.error("%s: %s", args.ply, error)
        return 3
    if summary["level"] != settings.level:
        log.warning("%s: a faint scene: the density peaks at %.3g, below --level %g; the surface is taken at %.3g "
                    "(--faint-fraction %g of the peak)", args.ply, summary["peak_density"], settings.level, summary["level"],
                    settings.faint_fraction)
    log.info("%d vertices, %d faces (watertight: %s, extent %s) -> %s", summary["vertices"], summary["faces"],
             summary["watertight"], " x ".join(f"{v:.3f}" for v in summary["extent"]), args.out)
    return 0


def _export_splat(args: argparse.Namespace) -> int:
    from .export.splat import export_splat

    log.info("%d Gaussians -> %s", export_splat(args.ply, args.out), args.out)
    return 0


def _export_gpteval3d(args: argparse.Namespace) -> int:
    from .devices import resolve_device
    from .export.gpteval3d import render_benchmark_views

    written = render_benchmark_views(args.ply, args.out, device=resolve_device(args.device))
    log.info("%d images (rgb + normal) -> %s", len(written), args.out)
    return 0


def _gpteval3d_prompts(args: argparse.Namespace) -> int:
    from .export.gpteval3d import write_prompts

    log.info("%d prompts -> %s", write_prompts(args.prompts, args.out), args.out)
    return 0


def _known_answer(args: argparse.Namespace) -> int:
    from .evaluate.known_answer import evaluate_run

    result = evaluate_run(args.config, args.ply, args.out, video=args.video, views=args.views, resolution=args.resolution)
    log.info("PSNR %.2f dB (start %.2f), SSIM %.3f, IoU %.3f over %d views -> %s", result["psnr"], result["start"]["psnr"],
             result["ssim"], result["iou"], result["views"], args.out)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .atomic import write_json
    from .devices import resolve_device
    from .evaluate.metric import RunToScore, metric
    from .plugins import load_plugins
    from .prompts import lookup, read_prompt_list

    load_plugins(args.plugin, "--plugin")
    chosen = metric(args.metric)
    entry = lookup(args.prompts, args.prompt_id)
    others = tuple(e.prompt for e in read_prompt_list(args.prompts).values() if e.prompt_id != entry.prompt_id)
    scorer = chosen.load_scorer(dict(args.model), resolve_device(args.device))
    record = scorer(RunToScore(entry.prompt_id, entry.prompt, Path(args.views), Path(args.ply) if args.ply else None, others))
    write_json({"prompt_id": entry.prompt_id, "prompt": entry.prompt, "metric": chosen.name, **record}, args.out)
    extra = f", R-precision {record['r_precision']:.3f}" if "r_precision" in record else ""
    log.info("%s: %s %s%s over %s", entry.prompt_id, chosen.title, f"{record['mean']:.{chosen.digits}f}", extra, args.views)
    return 0


def _ref_images(args: argparse.Namespace) -> int:
    from .devices import resolve_device
    from .evaluate.reference_images import generate_reference_images
    from .prompts import read_prompt_list

    prompts = [entry.prompt for entry in read_prompt_list(args.prompts).values()]
    written = generate_reference_images(args.sd, prompts, args.count, args.out, batch=args.batch, seed=args.seed, steps=args.steps,
                                        resolution=args.resolution, device=resolve_device(args.device), compile_unet=args.compile)
    log.info("%d reference images written, %d requested, in %s", written, args.count, args.out)
    if args.summary:
        from .atomic import write_json

        write_json({"folder": args.out, "count": args.count, "prompts": args.prompts, "seed": args.seed, "steps": args.steps,
                    "resolution": args.resolution, "sd": args.sd, "written_this_time": written}, args.summary)
    return 0


def _fid(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .atomic import write_json
    from .devices import resolve_device
    from .evaluate.fid import compute_fid
    from .scene.render_folder import view_paths

    reference = sorted(Path(args.reference).glob("*.png"))
    generated = [path for folder in args.generated for path in view_paths(folder)]
    record = compute_fid(reference, generated, extractor=args.features, inception_weights=args.inception or None,
                         cache_dir=args.cache, batch=args.batch, device=resolve_device(args.device))
    write_json(record, args.out)
    log.info("%s = %.3f (%d renders vs %d reference images)", record["implementation"], record["value"],
             record["generated_images"], record["reference_images"])
    return 0


def _known_answer_table(args: argparse.Namespace) -> int:
    from .report.known_answer import write_known_answer_table

    for path in write_known_answer_table(args.manifest, args.out):
        log.info("wrote %s", path)
    return 0


def _analytic_theorem1(args: argparse.Namespace) -> int:
    from .evaluate.theorem1 import write_theorem1

    for path in write_theorem1(args.out, timesteps=args.timesteps, samples=args.samples, seed=args.seed):
        log.info("wrote %s", path)
    return 0


def _analytic_losses(args: argparse.Namespace) -> int:
    from .evaluate.analytic_losses import write_analytic_losses

    for path in write_analytic_losses(args.out, seeds=args.seeds, iterations=args.iterations, scene_iterations=args.scene_iterations):
        log.info("wrote %s", path)
    return 0


def _miniworld(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .devices import resolve_device
    from .miniworld.build import STAGES, run_stage
    from .miniworld.loop import limit_training_time
    from .miniworld.report import GateError
    from .miniworld.settings import load_settings

    settings = load_settings(args.config)
    device = resolve_device(args.device)
    limit_training_time(None if args.max_minutes is None else 60.0 * args.max_minutes)
    for stage in STAGES if args.stage == "all" else (args.stage,):
        try:
            run_stage(stage, settings, Path(args.out), Path(args.work), device, progress=not args.no_progress)
        except GateError as error:
            log.error("%s", error)
            return 3
    return 0


def _figure(args: argparse.Namespace) -> int:
    from .report.ablation import write_ablation_figure

    for path in write_ablation_figure(args.manifest, args.out):
        log.info("wrote %s", path)
    return 0


def _build_extensions(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .scene.render import build_cuda_extensions

    message = build_cuda_extensions()
    log.info("%s", message)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(message + "\n", encoding="utf-8")
    return 0


def _table(args: argparse.Namespace) -> int:
    from .report.table1 import write_table1

    for path in write_table1(args.manifest, args.out):
        log.info("wrote %s", path)
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from pathlib import Path

    import yaml

    from .doctor import diagnose, format_rows

    path = Path(args.config)
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    rows, ok = diagnose(config, Path.cwd(), args.targets)  # config paths are relative to where snakemake runs
    print(f"segmentdreamer doctor: {path} (targets: {' '.join(args.targets) or 'all'})")
    print(format_rows(rows))
    print("everything the targets need is here" if ok else "something the targets need is missing (rows marked NO)")
    return 0 if ok else 1


def _models(args: argparse.Namespace) -> int:
    from .doctor import download_commands

    print(download_commands())
    return 0


GPU_VERBS = frozenset({"miniworld", "init", "train", "render", "evaluate", "ref-images", "fid", "export-gpteval3d"})
"""Verbs that run on a GPU when there is one: each claims a GPU slot first (``gpu_slots``)."""



def key_value(text: str) -> tuple[str, str]:
    """An argparse ``type``: ``KEY=VALUE`` -> (KEY, VALUE)."""
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def bounded(kind: type, low: float | None = None, high: float | None = None):
    """An argparse ``type``: a finite ``kind`` (int or float) in [low, high] (None: open); argparse names the option
    in the error (``argument --views: 0 is below its minimum 1``) and exits with 2 before any work."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if low is not None and value < low:
            raise argparse.ArgumentTypeError(f"{value} is below its minimum {low}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"{value} is above its maximum {high}")
        return value

    parse.__name__ = kind.__name__
    return parse


def build_parser() -> argparse.ArgumentParser:
    from .evaluate.settings import FidSettings
    from .init.settings import InitSettings
    from .scene.ring import COMPARISON_RESOLUTION, RING

    parser = argparse.ArgumentParser(prog="segmentdreamer", description="Text-to-3D with Segmented Consistency Trajectory "
                                     "Distillation and its baselines: one verb per pipeline step (the Snakemake workflow "
                                     "calls them). `segmentdreamer VERB --help` for a verb's options.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    init = verbs.add_parser("init", help="initial Gaussians for one prompt of a prompt list")
    init.add_argument("--prompts", required=True, help="prompt list TSV (prompt_id, prompt, init_prompt[, seed])")
    init.add_argument("--prompt-id", required=True)
    init.add_argument("--out", required=True, help="output .ply (standard 3DGS layout)")
    init.add_argument("--method", choices=("pointe", "sphere"), default="pointe")
    init.add_argument("--pointe", default="models/pointe", help="models.pointe: folder with base_40m_textvec.pt, upsample_40m.pt")
    init.add_argument("--pointe-clip", default="models/clip-vit-l-14/open_clip_pytorch_model.bin",
                      help="models.pointe_clip: open_clip ViT-L-14 weights file")
    init.add_argument("--cache", default="results/cache/pointe", help="Point-E clouds cached per (init prompt, seed)")
    init.add_argument("--seed", type=bounded(int, 0, None), default=None, help="default: the prompt list's seed column (else 0)")
    init.add_argument("--steps", type=bounded(int, 1, 10000), default=InitSettings.steps, help="Karras Heun steps per Point-E stage")
    init.add_argument("--copies", type=bounded(int, 1, 1000), default=InitSettings.copies, help="Gaussians per Point-E point (x 4096 points)")
    init.add_argument("--device", default="auto")
    init.set_defaults(run=_init)
    train = verbs.add_parser("train", help="train one asset from a run config")
    train.add_argument("--config", required=True, action="append",
                       help="RUN.yaml (keys of segmentdreamer.config.TrainConfig); repeat with --out to train several assets "
                            "in one process, their UNet calls batched (segmentdreamer/training/multi_asset.py)")
    train.add_argument("--out", required=True, action="append", help="output folder (checkpoints, log, gaussians.ply), one per --config")
    train.add_argument("--log", action="append", help="with several --config: one log file per asset, appended to with that asset's own "
                                                      "log records (the process's log keeps everything)")
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt if present")
    train.add_argument("--planned", action="store_true", help="each --config must be a run config as the workflow wrote it "
                                                              "(refuses a hand-edited one; the workflow's rules pass it)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable), e.g. --set iterations=30")
    train.set_defaults(run=_train)
    rend = verbs.add_parser("render", help="render the evaluation ring (white background) and a turntable video")
    rend.add_argument("--ply", required=True)
    rend.add_argument("--out", required=True)
    rend.add_argument("--views", type=bounded(int, 1, 10000), default=RING.views)
    rend.add_argument("--resolution", type=bounded(int, 8, 8192), default=RING.resolution)
    rend.add_argument("--elevation", type=bounded(float, -90, 90), default=RING.elevation, help="degrees above the horizon")
    rend.add_argument("--device", default="auto")
    rend.add_argument("--video", default="", help="turntable .mp4 path (default: OUT/turntable.mp4)")
    rend.add_argument("--no-video", action="store_true")
    rend.set_defaults(run=_render)
    view = verbs.add_parser("view", help="interactive web viewer of a run's Gaussians (open the printed address)")
    view.add_argument("path", help="a run folder (its gaussians.ply, prompt and scores) or a .ply file")
    view.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve other machines (default: this one only)")
    view.add_argument("--port", type=bounded(int, 1, 65535), default=8080)
    view.add_argument("--timeout", type=bounded(float, 0, None), default=None, help="stop by itself after this many seconds (default: Ctrl-C)")
    view.add_argument("--device", default="auto", help="for the 'render this view' button (gsplat on CUDA, else PyTorch)")
    view.set_defaults(run=_view)
    mesh = verbs.add_parser("export-mesh", help="a coloured triangle mesh of the Gaussians (density -> marching cubes)")
    mesh.add_argument("--ply", required=True, help="trained Gaussians (.ply)")
    mesh.add_argument("--out", required=True, help="mesh file: .glb, .obj or .ply (by suffix)")
    mesh.add_argument("--resolution", type=bounded(int, 16, 1024), default=192, help="grid cells per side (16-1024)")
    mesh.add_argument("--level", type=bounded(float, 0, None), default=1.0,
                      help="surface density, in units of one opaque Gaussian's peak")
    mesh.add_argument("--faint-fraction", type=bounded(float, 0, 1), default=0.25,
                      help="where the density never reaches --level, take the surface at this fraction of its peak "
                           "(default 0.25); 0: fail instead")
    mesh.add_argument("--all-components", action="store_true", help="keep floaters and inner walls (default: the largest piece)")
    mesh.add_argument("--z-up", action="store_true", help="keep our +z up (default: glTF's +y up)")
    mesh.set_defaults(run=_export_mesh)
    splat = verbs.add_parser("export-splat", help="the Gaussians in the web viewers' .splat format")
    splat.add_argument("--ply", required=True)
    splat.add_argument("--out", required=True, help="FILE.splat")
    splat.set_defaults(run=_export_splat)
    gpteval3d = verbs.add_parser("export-gpteval3d", help="one asset's views in GPTEval3D's layout: 120 rgb + normal maps at 512 px")
    gpteval3d.add_argument("--ply", required=True)
    gpteval3d.add_argument("--out", required=True, help="the asset's folder: methods/<method>/<prompt index>/<seed>")
    gpteval3d.add_argument("--device", default="auto")
    gpteval3d.set_defaults(run=_export_gpteval3d)
    gpt_prompts = verbs.add_parser("gpteval3d-prompts", help="GPTEval3D's prompts.json (ordered prompts) from a prompt list")
    gpt_prompts.add_argument("--prompts", required=True, help="prompt list TSV")
    gpt_prompts.add_argument("--out", required=True, help="prompts.json")
    gpt_prompts.set_defaults(run=_gpteval3d_prompts)
    known = verbs.add_parser("known-answer", help="PSNR / SSIM / IoU of a known-answer run against its ground truth")
    known.add_argument("--config", required=True, help="the run's config (models.sd: target-scene:<scene>)")
    known.add_argument("--ply", required=True)
    known.add_argument("--out", required=True, help="known_answer.json")
    known.add_argument("--video", default=None, help="ground truth | learned turntables side by side (animated .gif)")
    known.add_argument("--views", type=bounded(int, 1, 10000), default=RING.views)
    known.add_argument("--resolution", type=bounded(int, 8, 4096), default=COMPARISON_RESOLUTION)
    known.set_defaults(run=_known_answer)
    known_table = verbs.add_parser("known-answer-table", help="the known-answer table (CSV, Markdown), learning curves and overview page")
    known_table.add_argument("--manifest", required=True)
    known_table.add_argument("--out", required=True, help="prefix: PREFIX.csv, PREFIX.md, PREFIX_curve.png, PREFIX.html")
    known_table.set_defaults(run=_known_answer_table)
    theorem = verbs.add_parser("analytic-theorem1", help="Theorem 1 measured on the analytic prior: error vs segment length")
    theorem.add_argument("--out", required=True, help="prefix: PREFIX.csv, PREFIX.md, PREFIX.png")
    theorem.add_argument("--timesteps", type=bounded(int, 1, 960), default=24, help="t's per (Ns, dt), evenly spread in (20, 980)")
    theorem.add_argument("--samples", type=bounded(int, 1, None), default=128, help="x_t draws per t")
    theorem.add_argument("--seed", type=bounded(int, 0, None), default=0)
    theorem.set_defaults(run=_analytic_theorem1)
    losses = verbs.add_parser("analytic-losses", help="the five losses distilling a latent (and a small 3DGS through a linear map) "
                                                      "under the analytic prior, per guidance scale")
    losses.add_argument("--out", required=True, help="prefix: PREFIX.csv, PREFIX.md, PREFIX.png")
    losses.add_argument("--seeds", type=bounded(int, 1, 1000), default=4)
    losses.add_argument("--iterations", type=bounded(int, 1, None), default=1000)
    losses.add_argument("--scene-iterations", type=bounded(int, 0, None), default=200, help="iterations of the 3DGS setting (0: leave it out)")
    losses.set_defaults(run=_analytic_losses)
    score = verbs.add_parser("evaluate", help="score one run with a registered metric (clip, ir, or a plugin's): one JSON "
                                               "record, its mean is the run's Table 1 value")
    score.add_argument("--metric", required=True, help="a registered metric's name (segmentdreamer/evaluate/metric.py)")
    score.add_argument("--views", required=True, help="folder of view_*.png from `segmentdreamer render`")
    score.add_argument("--ply", default=None, help="the run's gaussians.ply (metrics of the 3D scene)")
    score.add_argument("--prompts", required=True)
    score.add_argument("--prompt-id", required=True)
    score.add_argument("--model", type=key_value, action="append", default=[], metavar="KEY=PATH",
                       help="a models.* key the metric loads, e.g. clip=models/clip-vit-large-patch14 (repeat per key)")
    score.add_argument("--plugin", action="append", default=[], help="a module or .py file registering metrics (repeatable)")
    score.add_argument("--out", required=True, help="the run's JSON record")
    score.add_argument("--device", default="auto")
    score.set_defaults(run=_evaluate)
    ref = verbs.add_parser("ref-images", help="Stable Diffusion images of a prompt list (FID reference set); skips existing files")
    ref.add_argument("--prompts", required=True)
    ref.add_argument("--count", type=bounded(int, 1, None), required=True, help="total images (paper: 50000), prompts used round-robin")
    ref.add_argument("--out", required=True)
    ref.add_argument("--sd", default="stabilityai/stable-diffusion-2-1-base", help="models.sd")
    ref.add_argument("--batch", type=bounded(int, 1, None), default=FidSettings.batch)
    ref.add_argument("--seed", type=bounded(int, 0, None), default=FidSettings.seed, help="image k uses seed + k")
    ref.add_argument("--steps", type=bounded(int, 1, 1000), default=FidSettings.steps)
    ref.add_argument("--resolution", type=bounded(int, 64, 2048), default=FidSettings.resolution)
    ref.add_argument("--device", default="auto")
    ref.add_argument("--compile", action="store_true", help="torch.compile the UNet (CUDA; ~1.5x after a minute of compiling)")
    ref.add_argument("--summary", default=None, help="JSON written once the set is complete (the workflow's output)")
    ref.set_defaults(run=_ref_images)
    table = verbs.add_parser("table", help="Table 1 (CSV, Markdown, LaTeX) from a manifest of per-run results")
    table.add_argument("--manifest", required=True, help="JSON: {prompt_set, methods: {name: {clip, ir, timing, fid}}}")
    table.add_argument("--out", required=True, help="output prefix, e.g. results/table1/dreamfusion40")
    table.set_defaults(run=_table)
    fid = verbs.add_parser("fid", help="FID (or the tiny smoke-run distance) of render folders against a reference image folder")
    fid.add_argument("--reference", required=True, help="folder of reference PNGs (`segmentdreamer ref-images`)")
    fid.add_argument("--generated", required=True, nargs="+", help="render folders (view_*.png) of one method")
    fid.add_argument("--features", choices=("inception", "tiny"), default="inception")
    fid.add_argument("--inception", default=None, help="models.inception: torch-fidelity Inception weights file")
    fid.add_argument("--cache", default=None, help="folder for cached reference statistics")
    fid.add_argument("--batch", type=bounded(int, 1, None), default=50, help="renders per feature-network call (not the reference set's batch)")
    fid.add_argument("--device", default="auto")
    fid.add_argument("--out", required=True)
    fid.set_defaults(run=_fid)
    figure = verbs.add_parser("figure", help="a labelled render grid + metric table (+ plot) from a manifest")
    figure.add_argument("--manifest", required=True, help="JSON written by the workflow (see segmentdreamer/report/ablation.py)")
    figure.add_argument("--out", required=True, help="output prefix: PREFIX.png/.pdf, PREFIX_metrics.csv/.md, PREFIX_plot.*")
    figure.set_defaults(run=_figure)
    build = verbs.add_parser("build-extensions", help="compile gsplat's CUDA extension once (before parallel GPU jobs)")
    build.add_argument("--out", required=True, help="marker file written when done")
    build.set_defaults(run=_build_extensions)
    doctor = verbs.add_parser("doctor", help="check Python, torch, CUDA, gsplat, every model key, disk and profile on one screen")
    doctor.add_argument("--config", default="config.yaml", help="the workflow config (default: config.yaml)")
    doctor.add_argument("targets", nargs="*", help="the Snakemake targets you will run (default: all)")
    doctor.set_defaults(run=_doctor)
    models = verbs.add_parser("models", help="print the commands that fill every model key on a machine with internet")
    models.set_defaults(run=_models)
    world = verbs.add_parser("miniworld", help="train the miniworld's mini-SD, mini-CLIP and mini Point-E, one stage at a time "
                             "(docs/miniworld.md)")
    world.add_argument("stage", choices=("renders", "clip", "vae", "unet", "pointe", "gates", "all"),
                       help="renders -> clip -> vae -> unet -> pointe -> gates (each resumes; all: every stage in order)")
    world.add_argument("--config", default="workflow/miniworld.yaml", help="a config file with a `miniworld:` block")
    world.add_argument("--out", default="weights/miniworld", help="the shipped folder: sd/, clip/, pointe/, gates.json, MANIFEST.json")
    world.add_argument("--work", default="results/miniworld/work", help="renders, checkpoints and loss curves")
    world.add_argument("--device", default="auto")
    world.add_argument("--no-progress", action="store_true", help="no progress bars (log files)")
    world.add_argument("--max-minutes", type=bounded(float, 0.1, None), default=None,
                       help="stop each trainer of this invocation after this long (checkpointed; a rerun resumes to the "
                            "full step count); MANIFEST.json records the steps each model took")
    world.set_defaults(run=_miniworld)
    tiny = verbs.add_parser("make-tiny-models", help="write tiny random-weight models in the real on-disk layouts (offline tests, smoke runs)")
    tiny.add_argument("dir", help="output folder; gets sd/, clip/, pointe/ and image_reward/")
    tiny.set_defaults(run=_make_tiny_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from .config import ConfigError
    from .errors import PlyError
    from .models import MissingWeightsError
    from .prompts import PromptListError

    try:
        if args.verb in GPU_VERBS:
            from .gpu_slots import claim_gpu_for_job

            claim_gpu_for_job()  # which GPU of the host this job takes (no-op without CUDA)
        return args.run(args)
    except (MissingWeightsError, ConfigError, PromptListError, PlyError) as error:
        log.error("%s", error)
        return 2


if __name__ == "__main__":
    sys.exit(main())
