"""Protein-tower vectors kept on disk by sequence hash, so a sequence is embedded once per tower.

Re-annotating a proteome against another catalogue, with other options or after an interruption
skips the protein tower for every sequence seen before. One SQLite file per (tower fingerprint,
precision) under the cache (``$PROT_RETRIEVE_CACHE/proteins/``): lookups and inserts stay cheap at
millions of sequences, memory stays that of one block, and several processes (Ray workers on one
node) can share it. A cache is never worth failing for: a corrupt or unwritable file is reported once
and the vectors are computed.
"""
from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from pathlib import Path
from typing import Callable

import numpy as np

LOG = logging.getLogger(__name__)
_QUERY_CHUNK = 500  # keys per SELECT, well under SQLite's limit on bound variables


def sequence_key(sequence: str) -> bytes:
    return hashlib.sha256(sequence.encode("ascii")).digest()[:16]


class EmbeddingStore:
    """Vectors of one protein tower (``setting``: its fingerprint and precision) in ``folder``."""

    def __init__(self, folder: str | os.PathLike, setting: str, dim: int):
        self.path = self.file(folder, setting)
        self.dim = dim
        self._db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=120, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
            self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL) "
                             "WITHOUT ROWID")
        except (OSError, sqlite3.Error) as err:
            self._give_up(err)

    @staticmethod
    def file(folder: str | os.PathLike, setting: str) -> Path:
        """The SQLite file that holds ``setting``'s vectors in ``folder``."""
        return Path(folder) / f"{hashlib.sha256(setting.encode()).hexdigest()[:16]}.sqlite"

    def get_or_compute(self, sequences: list[str], compute: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """Vectors of ``sequences`` in order: stored ones are read, the others computed and stored."""
        keys = [sequence_key(s) for s in sequences]
        found = self._lookup(keys)
        out = np.empty((len(sequences), self.dim), dtype=np.float32)
        missing = [i for i, k in enumerate(keys) if k not in found]
        for i, k in enumerate(keys):
            if k in found:
                out[i] = found[k]
        if missing:
            fresh = np.asarray(compute([sequences[i] for i in missing]), dtype=np.float32)
            out[missing] = fresh
            self._store([keys[i] for i in missing], fresh)
        return out

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0] if self._db else 0

    def _lookup(self, keys: list[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        if self._db is None:
            return found
        try:
            for start in range(0, len(keys), _QUERY_CHUNK):
                chunk = keys[start:start + _QUERY_CHUNK]
                rows = self._db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(chunk))})",
                                        chunk).fetchall()
                for key, blob in rows:
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.shape == (self.dim,):  # a row of another size is not ours: recompute it
                        found[key] = vector
        except sqlite3.Error as err:
            self._give_up(err)
            return {}
        return found

    def _store(self, keys: list[bytes], vectors: np.ndarray) -> None:
        if self._db is None:
            return
        try:
            with self._db:  # one transaction per block
                self._db.execute("BEGIN")
                self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                                     [(k, v.tobytes()) for k, v in zip(keys, vectors)])
        except sqlite3.Error as err:
            self._give_up(err)

    def _give_up(self, err: Exception) -> None:
        LOG.warning("%s: protein embedding cache not usable, embedding without it (%s)", self.path, err)
        if self._db is not None:
            self._db.close()
        self._db = None
