"""Evaluation of rendered assets (SPEC 8): CLIP-L score and FID so far; ImageReward is open work."""
