"""Evaluation of rendered assets (SPEC 8): CLIP-L score, FID and its reference set; ImageReward is open work."""
