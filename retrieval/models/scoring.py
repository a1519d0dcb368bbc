"""How the towers' vectors become recall scores and re-ranker features (shared by training and serving).

The recall score of protein p and function t is ``scale * u_p . v_t + b_t``. Writing the index
vector as ``[scale * v_t, b_t]`` and the query as ``[u_p, 1]`` makes it a plain inner product, so
an exact or approximate FAISS index ranks by exactly the score the model was trained on.
"""
from __future__ import annotations

import numpy as np
import torch

from retrieval.models.batching import low_precision_dtype

#: Per-pair scalar features the re-ranker can be configured with, beside [u, v, |u-v|, u*v].
PAIR_FEATURES = ("similarity", "term_bias")


def index_vectors(vectors: np.ndarray, bias: np.ndarray, scale: float) -> np.ndarray:
    """Function vectors for the index: ``[scale * v, b]`` (float32)."""
    return np.hstack([vectors * scale, bias[:, None]]).astype(np.float32)


def query_vectors(u: np.ndarray) -> np.ndarray:
    """Protein queries for the index: ``[u, 1]``."""
    return np.hstack([u, np.ones((len(u), 1), dtype=u.dtype)]).astype(np.float32)


def split_index_vectors(stored: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`index_vectors`: (v, b) from stored rows of any leading shape."""
    return stored[..., :-1] / scale, stored[..., -1]


def pair_features(names, u: np.ndarray, v: np.ndarray, bias: np.ndarray, scale: float,
                  extra: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """(B, K, F) scalar features for u (B, D), candidates v (B, K, D) and their biases (B, K).

    ``extra`` supplies features computed elsewhere (e.g. homology transfer scores), by name.
    """
    computed = {"similarity": lambda: scale * np.einsum("bd,bkd->bk", u, v), "term_bias": lambda: bias}
    columns = []
    for name in names:
        if extra is not None and name in extra:
            columns.append(extra[name])
        elif name in computed:
            columns.append(computed[name]())
        else:
            raise KeyError(f"pair feature {name!r} is neither computed here nor supplied")
    return np.stack(columns, axis=-1).astype(np.float32)


@torch.inference_mode()
def rerank_probabilities(reranker, u: np.ndarray, v: np.ndarray, features: np.ndarray,
                         pairs: int = 4096, precision: str = "fp32") -> np.ndarray:
    """Sigmoid of the re-ranker's logits for every candidate, (B, K) float32.

    Proteins go through in batches of about ``pairs`` candidate pairs: the MLP's intermediates then
    stay in cache, which made the re-ranker 2.5 times faster on a CPU than batches of 256 proteins.
    ``precision``: of the products with the candidates (:meth:`FusionReranker.forward`).
    """
    reranker.eval()
    dtype = low_precision_dtype(torch.device("cpu"), precision)
    batch = max(1, pairs // max(v.shape[1], 1))
    out = []
    for s in range(0, len(u), batch):
        logits = reranker(torch.from_numpy(u[s: s + batch]), torch.from_numpy(np.ascontiguousarray(v[s: s + batch])),
                          torch.from_numpy(features[s: s + batch]), dtype)
        out.append(torch.sigmoid(logits).numpy())
    return np.concatenate(out) if out else np.zeros((0, v.shape[1]), dtype=np.float32)
