"""Evaluation of rendered assets (docs/method.md, "Evaluation"): CLIP-L score, ImageReward, FID and its Stable Diffusion reference set."""
