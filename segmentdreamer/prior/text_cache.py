"""On-disk cache of text-encoder outputs, keyed by (model, prompt).

Encoding a prompt costs a text-encoder forward and, on a cluster, the encoder's memory: each
(model, prompt) pair is encoded once and stored as ``<root>/<sha256(model, prompt)[:24]>.pt``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor

from ..atomic import atomic_target


class TextEmbeddingCache:
    """Look up or compute [L, D] embeddings; ``root=None`` disables the disk (memory only)."""

    def __init__(self, root: str | os.PathLike | None, model_key: str):
        self.root = Path(root) if root is not None else None
        self.model_key = model_key
        self._memory: dict[str, Tensor] = {}

    def key(self, prompt: str) -> str:
        digest = hashlib.sha256(f"{self.model_key}\0{prompt}".encode("utf-8")).hexdigest()
        return digest[:24]

    def get(self, prompt: str, compute: Callable[[str], Tensor]) -> Tensor:
        key = self.key(prompt)
        if key in self._memory:
            return self._memory[key]
        embedding = self._load(key, prompt)
        if embedding is None:
            embedding = compute(prompt).detach().cpu()
            self._store(key, prompt, embedding)
        self._memory[key] = embedding
        return embedding

    def _path(self, key: str) -> Path | None:
        return None if self.root is None else self.root / f"{key}.pt"

    def _load(self, key: str, prompt: str) -> Tensor | None:
        path = self._path(key)
        if path is None or not path.exists():
            return None
        record = torch.load(path, map_location="cpu", weights_only=True)
        if record.get("model") != self.model_key or record.get("prompt") != prompt:
            return None  # a hash collision or a stale file: recompute and overwrite
        return record["embedding"]

    def _store(self, key: str, prompt: str, embedding: Tensor) -> None:
        path = self._path(key)
        if path is None:
            return
        with atomic_target(path) as tmp:
            torch.save({"model": self.model_key, "prompt": prompt, "embedding": embedding}, tmp)
