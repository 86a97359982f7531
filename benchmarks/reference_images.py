"""Images per second of the FID reference set: 50-step DDIM + CFG at 512^2, through the project's own code.

    python benchmarks/reference_images.py [--batches 8,16,32] [--images 64] [--compile] [--json OUT.json]

SD 2.1-base architectures with random weights (weights do not change the cost) are written once in
diffusers layout to ``--folder``; then ``segmentdreamer.evaluate.reference_images.generate_reference_images``
(the function behind ``segmentdreamer ref-images``: diffusers' StableDiffusionPipeline, fp16, DDIM, guidance
7.5, PNG writing included) runs per batch size: a warm-up call, a call for one batch and a call for
``--images`` images, each loading the pipeline once; the steady-state rate is the difference of the last two
(images - batch) / (t_images - t_batch), so loading cancels. Prints images/s per batch size, writes JSON.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch
from bench_common import Column, machine, report

from segmentdreamer.evaluate.reference_images import generate_reference_images
from segmentdreamer.testing.tiny_models import full_size_stable_diffusion


def write_full_size_pipeline(folder: Path) -> Path:
    """SD 2.1-base architectures with random weights as a diffusers folder (fp16), unless already there."""
    if (folder / "model_index.json").is_file():
        return folder
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    prior = full_size_stable_diffusion("cpu", torch.float16)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipeline = StableDiffusionPipeline(vae=prior.vae, text_encoder=prior.text_encoder, tokenizer=prior.tokenizer,
                                       unet=prior.unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    pipeline.save_pretrained(folder)
    return folder


def seconds_for(sd: Path, count: int, batch: int, steps: int, out_dir: Path, compile_unet: bool) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    generate_reference_images(sd, ["a DSLR photo of a corgi", "a cat with a mullet"], count, out_dir, batch=batch, steps=steps,
                              device="cuda", compile_unet=compile_unet)
    torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(sd: Path, batch: int, images: int, steps: int, out_root: Path, compile_unet: bool) -> dict:
    seconds_for(sd, batch, batch, steps, out_root / f"warmup_{batch}", compile_unet)  # compiles (cached for the next calls)
    one_batch = seconds_for(sd, batch, batch, steps, out_root / f"one_{batch}", compile_unet)
    many = seconds_for(sd, images, batch, steps, out_root / f"many_{batch}", compile_unet)
    return {"batch": batch, "images": images, "seconds_one_batch": one_batch, "seconds_all": many,
            "images_per_s": (images - batch) / (many - one_batch), "images_per_s_with_loading": images / many}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="8,16,32")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--folder", default="/tmp/segmentdreamer-random-sd21")
    parser.add_argument("--compile", action="store_true", help="compile the pipeline's UNet (compile_unet=True)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    sd = write_full_size_pipeline(Path(args.folder))
    out_root = Path(tempfile.mkdtemp(prefix="refbench-"))
    try:
        rows = [measure(sd, b, args.images, args.steps, out_root, args.compile) for b in map(int, args.batches.split(","))]
    finally:
        shutil.rmtree(out_root, ignore_errors=True)
    columns = [Column("batch", "batch", "{}", 6), Column("images_per_s", "images/s", "{:.2f}", 10),
               Column("images_per_s_with_loading", "with loading", "{:.2f}", 14)]
    report(f"{machine()}; SD 2.1-base architectures, random weights, fp16, {args.steps}-step DDIM + CFG 7.5, 512^2, "
           f"PNGs written, UNet {'compiled' if args.compile else 'eager'}", columns, rows, args.json)


if __name__ == "__main__":
    main()
