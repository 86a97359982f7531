"""Evaluation of rendered assets (SPEC 8): CLIP-L score so far; ImageReward and FID are open work."""
