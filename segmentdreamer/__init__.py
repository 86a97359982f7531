"""SegmentDreamer: text-to-3D with Segmented Consistency Trajectory Distillation (SCTD).

The package is organised by concept (see README "Code map"):

- ``prior/``   the Stable Diffusion prior: loading, text conditioning, noise prediction, schedule.
- ``losses/``  the distillation losses (SCTD and the baselines SDS, ISM, CDS, GCS) and their shared
               ODE solver.
- ``models``   model keys -> local weights, and the tiny random-weight models for offline tests.
"""

__version__ = "0.1.0"
