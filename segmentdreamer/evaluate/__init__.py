"""Evaluation of rendered assets (SPEC 8): CLIP-L score, ImageReward, FID and its Stable Diffusion reference set."""
