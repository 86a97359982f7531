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

TARGET_SCENE = "target-scene:"
"""A ``models.sd`` value starting so selects the known-answer prior (prior/target_scene.py), no weights."""


def is_target_scene(spec: str) -> bool:
    """Whether a ``models.sd`` value selects the known-answer prior (``target-scene:<scene>[/<negative scene>]``)."""
    return str(spec).startswith(TARGET_SCENE)


def parse_target_scene(spec: str) -> tuple[list[str], dict[str, float]]:
    """``target-scene:<scene>[/<negative scene>][;unconditional_std=<sigma>]`` -> (scene names, options).

    Raises:
        ValueError: naming ``models.sd`` and what is wrong (an empty name, an option that is not ``key=value`` or
            not known, a standard deviation that is not a finite positive number). Scene names are checked
            against the known scenes by the prior (prior/target_scene.py), which knows them.
    """
    scenes, *options = str(spec).removeprefix(TARGET_SCENE).split(";")
    names = scenes.split("/")
    where = f"models.sd = {spec!r}"
    if not all(names) or len(names) > 2:
        raise ValueError(f"{where}: expected target-scene:<scene>[/<negative scene>], e.g. target-scene:totem")
    settings: dict[str, float] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key != "unconditional_std":
            raise ValueError(f"{where}: option {option!r} is not unconditional_std=<sigma> (the only option)")
        try:
            settings[key] = float(value)
        except ValueError:
            raise ValueError(f"{where}: unconditional_std={value!r} is not a number") from None
        if not 0.0 < settings[key] < float("inf"):
            raise ValueError(f"{where}: unconditional_std must be a finite number > 0, got {value}")
    return names, settings


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


class CorruptWeightsError(MissingWeightsError):
    """A weight file is present but empty, truncated or not in the format its loader expects."""


SAFETENSORS_MAX_HEADER = 100 * 2**20


def check_safetensors(path: str | os.PathLike, config_key: str) -> None:
    """Fail fast, naming ``config_key`` and the file, if ``path`` is not a complete safetensors file.

    Reads only the header (8-byte length, JSON table of tensors with byte offsets) and compares the data it
    describes with the file size: an empty, truncated or foreign file is named as such in milliseconds.
    """
    import json
    import struct

    path = Path(path)
    size = path.stat().st_size
    where = f"{config_key}: {path}"
    if size < 8:
        raise CorruptWeightsError(f"{where} is {'empty' if size == 0 else f'{size} bytes'}: not a safetensors file (a failed download?)")
    with open(path, "rb") as handle:
        (header_size,) = struct.unpack("<Q", handle.read(8))
        if header_size > SAFETENSORS_MAX_HEADER:
            raise CorruptWeightsError(f"{where} is not a safetensors file (its first 8 bytes announce a {header_size}-byte "
                                      "header): another format, or an error page saved under that name")
        if header_size > size - 8:
            raise CorruptWeightsError(f"{where} is truncated: {size} bytes on disk, its header alone needs {8 + header_size} "
                                      "(download it again)")
        try:
            header = json.loads(handle.read(header_size))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise CorruptWeightsError(f"{where} is not a safetensors file (its header is not JSON)") from None
    ends = [entry["data_offsets"][1] for name, entry in header.items() if name != "__metadata__" and isinstance(entry, dict)]
    needed = 8 + header_size + max(ends, default=0)
    if needed > size:
        raise CorruptWeightsError(f"{where} is truncated: {size} of its {needed} bytes are on disk (download it again)")


def check_diffusers_weights(folder: Path, components: tuple[str, ...], config_key: str) -> None:
    """Every ``*.safetensors`` of the given subfolders is complete; a subfolder without weights is named."""
    for component in components:
        files = sorted((folder / component).glob("*.safetensors"))
        if not files and not list((folder / component).glob("*.bin")):
            raise MissingWeightsError(f"{config_key}: {folder / component} holds no weights (*.safetensors or *.bin)")
        for file in files:
            check_safetensors(file, config_key)
