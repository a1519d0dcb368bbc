"""A disk cache of features keyed by content hash, so a text (or a sequence) is embedded once.

Building an index of all 44k GO terms spends nearly all its time in the text backbone; when the
backbone is frozen its output for a given text never changes, whatever heads are trained on top.
Likewise a protein tower's embedding of a sequence never changes for one model fingerprint.
One ``.npz`` per setting (backbone or model fingerprint, token limit, precision) holds the keys and
features.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Callable

import numpy as np

from index.errors import UNREADABLE, InputError

LOG = logging.getLogger(__name__)
CACHE_ENV = "PROT_RETRIEVE_CACHE"


USE_LOCK = ".in-use"
_held: dict[Path, int] = {}  # cache folder -> descriptor of its lock file, held for the process's life


def cache_dir() -> Path:
    """Where generated artefacts are cached: $PROT_RETRIEVE_CACHE, else ~/.cache/prot-retrieve.

    The first call for a folder takes a shared lock on it for the rest of the process, so that
    ``prot-retrieve cache --clear`` (which needs it exclusively) never removes what a running
    process reads. A read-only cache is used without the lock.

    Raises:
        InputError: the path exists and is not a folder.
    """
    path = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "prot-retrieve")
    if path not in _held:
        _held[path] = _lock(path, fcntl.LOCK_SH)
    return path


def exclusive_cache() -> Path:
    """The cache folder, locked for this process alone.

    Raises:
        InputError: another prot-retrieve process is using it.
    """
    path = cache_dir()
    fd = _held.get(path, -1)
    if fd >= 0:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(f"{path}: another prot-retrieve process is using the cache; clear it when that process "
                             "has ended") from None
    return path


def _lock(path: Path, how: int) -> int:
    """A descriptor of ``path``'s lock file, flocked ``how`` (waiting for a clear to end); -1 when
    the folder cannot hold one (read-only)."""
    if path.exists() and not path.is_dir():
        raise InputError(f"{path}: the cache ({CACHE_ENV}, else ~/.cache/prot-retrieve) is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / USE_LOCK, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        LOG.debug("cache %s without a lock (%s)", path, err.strerror)
        return -1
    fcntl.flock(fd, how)
    return fd


def read_json(path: Path) -> dict:
    """A small record kept in the cache (a measurement); {} when missing or unreadable."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return saved if isinstance(saved, dict) else {}


def write_json(path: Path, record: dict) -> None:
    """Keep ``record`` at ``path`` atomically; a read-only cache keeps nothing (it is measured again)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, path)
    except OSError as err:
        LOG.debug("cannot keep %s: %s", path, err)


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
            try:
                with np.load(self.path, allow_pickle=False) as z:
                    keys, features = z["keys"].tolist(), z["features"]
                if len(keys) != len(features):
                    raise ValueError(f"{len(keys)} keys for {len(features)} rows")
                self._keys, self._features = {k: i for i, k in enumerate(keys)}, features
            except UNREADABLE as err:  # a cache is never worth failing for
                LOG.warning("%s: corrupt cache file ignored, its features are computed again (%s)", self.path,
                            str(err).splitlines()[0][:100])

    def lookup(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """(mask of texts found, their features in order or None)."""
        rows = np.array([self._keys.get(content_key(t), -1) for t in texts], dtype=np.int64)
        found = rows >= 0
        return found, (self._features[rows[found]] if self._features is not None and found.any() else None)

    def get_or_compute(self, texts: list[str], compute: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """Features of ``texts`` in order: cached ones are read, the others computed once and stored."""
        found, cached = self.lookup(texts)
        missing = [texts[i] for i in np.flatnonzero(~found)]
        if not found.any():  # nothing to merge (or no texts at all)
            fresh = np.asarray(compute(missing), dtype=np.float32)
            self.add(missing, fresh)
            return fresh
        out = np.empty((len(texts), cached.shape[1]), dtype=np.float32)
        out[found] = cached
        if missing:
            out[~found] = fresh = np.asarray(compute(missing), dtype=np.float32)
            self.add(missing, fresh)
        return out

    def add(self, texts: list[str], features: np.ndarray) -> None:
        """Store new features and write the cache file atomically."""
        new: dict[str, int] = {}  # key -> first row; a text given twice is stored once
        for i, t in enumerate(texts):
            k = content_key(t)
            if k not in self._keys and k not in new:
                new[k] = i
        if not new:
            return
        block = np.asarray(features, dtype=np.float32)[list(new.values())]
        self._features = block if self._features is None else np.vstack([self._features, block])
        for k in new:
            self._keys[k] = len(self._keys)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez(tmp, keys=np.array(list(self._keys)), features=self._features)
        tmp.replace(self.path)
