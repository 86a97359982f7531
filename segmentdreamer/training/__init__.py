"""The training engine: one asset's loop, several assets in one process, and what stops a run that diverged.

- ``trainer.py``      :class:`~.trainer.Trainer`: the loop shared by every method (render, encode, loss, step,
                      densify), its checkpoints, resume and outputs in the run folder
- ``multi_asset.py``  several assets in one process sharing one prior, their no-grad UNet calls batched
- ``divergence.py``   the health checks of the parameters and renders, the marker a diverged run leaves
"""
