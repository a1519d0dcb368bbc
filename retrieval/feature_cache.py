"""A disk cache of frozen-backbone features, keyed by content hash, so a text is embedded once.

Building an index of all 44k GO terms spends nearly all its time in the text backbone; when the
backbone is frozen its output for a given text never changes, whatever heads are trained on top.
One ``.npz`` per backbone setting (name, token limit, precision) holds the keys and features.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np


def content_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class FeatureCache:
    """Features of texts under one backbone setting.

    Args:
        folder: cache folder.
        setting: what the features depend on besides the text (backbone id, max tokens, precision).
    """

    def __init__(self, folder: str | os.PathLike, setting: str):
        self.path = Path(folder) / f"{content_key(setting)}.npz"
        self._keys: dict[str, int] = {}
        self._features: np.ndarray | None = None
        if self.path.is_file():
            with np.load(self.path, allow_pickle=False) as z:
                self._keys = {k: i for i, k in enumerate(z["keys"].tolist())}
                self._features = z["features"]

    def lookup(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """(mask of texts found, their features in order or None)."""
        rows = np.array([self._keys.get(content_key(t), -1) for t in texts], dtype=np.int64)
        found = rows >= 0
        return found, (self._features[rows[found]] if self._features is not None and found.any() else None)

    def add(self, texts: list[str], features: np.ndarray) -> None:
        """Store new features and write the cache file atomically."""
        new = [(content_key(t), i) for i, t in enumerate(texts) if content_key(t) not in self._keys]
        if not new:
            return
        keys = [k for k, _ in new]
        block = np.asarray(features, dtype=np.float32)[[i for _, i in new]]
        self._features = block if self._features is None else np.vstack([self._features, block])
        for k in keys:
            self._keys[k] = len(self._keys)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez(tmp, keys=np.array(list(self._keys)), features=self._features)
        tmp.replace(self.path)
