"""Errors about what a user handed over (a file), printed by the CLI as one line naming it, never a traceback.

Config keys have :class:`~segmentdreamer.config.ConfigError`, prompt files :class:`~segmentdreamer.prompts.PromptListError`,
weights :class:`~segmentdreamer.models.MissingWeightsError`; this module holds the one about Gaussian files. It imports
nothing, so the CLI can catch them without importing torch.
"""


class PlyError(ValueError):
    """A .ply that cannot be used as Gaussians: unreadable, not a 3DGS layout, empty or non-finite (names the file)."""
