"""The protein tower's vectors of a batch of sequences, kept in the cache by sequence hash, so that
annotating a sequence again (another catalogue, other options) skips the tower."""
from __future__ import annotations

import numpy as np

from retrieval.models.protein_encoder import ProteinEncoder


class ProteinVectors:
    """Unit vectors of sequences from one protein tower; one cache store per precision computed in."""

    def __init__(self, tower: ProteinEncoder):
        self.tower = tower
        self._stores: dict = {}  # cache key -> EmbeddingStore

    def __call__(self, sequences: list[str], precision: str, use_cache: bool = True) -> np.ndarray:
        def encode(todo: list[str]) -> np.ndarray:
            return self.tower.encode(todo, precision=precision)

        if not use_cache:
            return encode(sequences)
        key = self.tower.cache_key(precision)
        if key not in self._stores:
            from retrieval.embedding_store import EmbeddingStore
            from retrieval.feature_cache import cache_dir

            self._stores[key] = EmbeddingStore(cache_dir() / "proteins", key, self.tower.config.embed_dim)
        return self._stores[key].get_or_compute(sequences, encode)
