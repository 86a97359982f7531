"""Model keys -> local weights, without ever downloading at load time.

A model key in the config (``models.sd``, ``models.clip``, ...) is a local folder or a Hugging Face hub
id. Loading never touches the network: a hub id must already be in the local Hugging Face cache
(``hf download <id>`` once on a machine with internet). Anything else fails at once with
:class:`MissingWeightsError`, naming the config key and what to put there.
"""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import snapshot_download
from huggingface_hub.errors import LocalEntryNotFoundError


class MissingWeightsError(FileNotFoundError):
    """Weights named by a config key are neither a local folder nor in the local Hugging Face cache."""


def resolve_model(id_or_folder: str | os.PathLike, config_key: str, layout: str) -> Path:
    """The local folder holding the weights of ``id_or_folder``.

    Args:
        id_or_folder: a local folder or a hub id such as ``stabilityai/stable-diffusion-2-1-base``.
        config_key: the config key it came from, for the error message (e.g. ``models.sd``).
        layout: what the folder must hold, for the error message (e.g. "a diffusers Stable Diffusion folder").

    Raises:
        MissingWeightsError: within milliseconds, never after a download attempt.
    """
    text = os.fspath(id_or_folder)
    folder = Path(text).expanduser()
    if folder.is_dir():
        return folder
    looks_like_path = text.startswith((".", "/", "~")) or text.count("/") != 1
    if not looks_like_path:
        try:
            return Path(snapshot_download(text, local_files_only=True))
        except (LocalEntryNotFoundError, ValueError, OSError):
            pass
    raise MissingWeightsError(
        f"{config_key} = {text!r} is neither a local folder nor in the local Hugging Face cache "
        f"(nothing is downloaded at load time). Set {config_key} to {layout} (a path), or fetch the hub id "
        f"once with `hf download {text}` on a machine with internet. "
        f"For offline tests, `segmentdreamer make-tiny-models DIR` writes tiny random-weight stand-ins."
    )
