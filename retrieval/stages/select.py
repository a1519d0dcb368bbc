"""Selection: scores made consistent with the GO graph, then the predictions a user asked for
(minimum score, fitted thresholds, aspect, top N overall or per aspect, the most specific terms)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from index.errors import InputError
from index.propagation import Propagator
from index.vector_index import FunctionIndex
from retrieval.config import AnnotateConfig


class Selection:
    """Propagates and selects the predictions over one function index.

    Args:
        index: the function index (its GO edges, if any, are propagated over).
        model_info: the model's manifest record, read when thresholds are asked for: its
            ``thresholds`` (``prot-retrieve thresholds``) give per aspect, per target precision, a score.
        homology_missing: the thresholds were fitted with homology and none is in use here.
    """

    def __init__(self, index: FunctionIndex, model_info: dict, homology_missing: bool = False):
        self.propagator = Propagator(len(index.catalogue), *index.edges) if index.edges is not None else None
        self._is_root = np.zeros(len(index.catalogue), dtype=bool)
        if index.edges is not None:  # roots: parents of something, children of nothing
            self._is_root[np.setdiff1d(index.edges[1], index.edges[0])] = True
        self.ids = np.asarray(index.catalogue.ids, dtype=object)
        self.aspects = index.catalogue.table["aspect"].to_numpy(dtype=object)
        self._aspect_codes = pd.factorize(self.aspects, use_na_sentinel=False)[0].astype(np.int64)
        self._names = index.catalogue.table["name"].to_numpy(dtype=object)
        self._info, self._homology_missing = model_info, homology_missing
        self._floors: dict[float, np.ndarray] = {}  # --min-precision level -> threshold per catalogue row

    def propagate(self, rows: np.ndarray, probs: np.ndarray, config: AnnotateConfig
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scored candidates (B, K) -> (protein, catalogue row, score) triples, propagated over the GO
        graph when asked for (a parent scores the max of its descendants)."""
        items = np.repeat(np.arange(len(rows)), rows.shape[1])
        valid = rows.ravel() >= 0  # padding: FAISS when the catalogue is smaller than k, or merged candidates
        items, cols, values = items[valid], rows.ravel()[valid], probs.ravel()[valid]
        if config.propagate and self.propagator is not None:
            return self.propagator.max_propagate_triples(items, cols, values, len(rows))
        return items, cols, values

    def thresholds(self, precision: float) -> dict[str, float]:
        """Per aspect, the score threshold fitted for ``precision``; an aspect that never reached it on
        the validation proteins is left out (nothing passes)."""
        fitted = self._info.get("thresholds", {}).get("precision", {})
        if not fitted:
            raise InputError("this model has no precision thresholds (fit them with `prot-retrieve thresholds`)")
        if self._homology_missing:
            raise InputError("--min-precision: the thresholds were fitted with homology; give references")
        levels = sorted({float(p) for per in fitted.values() for p in per})
        if precision not in levels:
            raise InputError(f"--min-precision {precision:g}: fitted levels are {', '.join(f'{p:g}' for p in levels)}")
        return {aspect: per[f"{precision:g}"] for aspect, per in fitted.items() if f"{precision:g}" in per}

    def select(self, protein_ids: list[str], items: np.ndarray, cols: np.ndarray, values: np.ndarray,
               config: AnnotateConfig) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """The reported rows as a table (protein_id, term_id, score, aspect, name), and their protein
        indices and catalogue rows.

        Filtered and ranked as arrays (by protein, score descending, catalogue row); only the rows
        reported become a DataFrame.
        """
        keep = values >= max(config.min_score, 1e-6)
        if config.min_precision:
            keep &= values >= self._column_floors(config.min_precision)[cols]
        if not config.include_roots:
            keep &= ~self._is_root[cols]
        if config.aspect:
            keep &= (self.aspects == config.aspect)[cols]
        items, cols, values = items[keep], cols[keep], values[keep]
        ranked = np.lexsort((cols, -values, items))
        items, cols, values = items[ranked], cols[ranked], values[ranked]
        groups = items * (self._aspect_codes.max() + 1) + self._aspect_codes[cols] if config.per_aspect else items
        if config.specific and self.propagator is not None:
            chosen = most_specific(groups, cols, self.propagator.ancestors, config.top)
        else:
            chosen = ranks_in_group(groups) < config.top
        items, cols, values = items[chosen], cols[chosen], values[chosen]
        ids = np.array(protein_ids, dtype=object)
        return pd.DataFrame({"protein_id": ids[items], "term_id": self.ids[cols], "score": values.astype(np.float64),
                             "aspect": self.aspects[cols], "name": self._names[cols]}), items, cols

    def _column_floors(self, precision: float) -> np.ndarray:
        """Each catalogue row's threshold for ``precision`` (inf: its aspect has none), once per level."""
        if precision not in self._floors:
            floor = self.thresholds(precision)
            self._floors[precision] = np.array([floor.get(a, np.inf) for a in self.aspects])
        return self._floors[precision]


def ranks_in_group(groups: np.ndarray) -> np.ndarray:
    """Each row's rank among the rows of its group, in row order (0: the group's first row)."""
    order = np.argsort(groups, kind="stable")
    starts = np.flatnonzero(np.r_[True, groups[order][1:] != groups[order][:-1]])
    ranks = np.empty(len(groups), dtype=np.int64)
    ranks[order] = np.arange(len(groups)) - np.repeat(starts, np.diff(np.r_[starts, len(groups)]))
    return ranks


def most_specific(groups: np.ndarray, cols: np.ndarray, ancestors, top: int) -> np.ndarray:
    """Positions (rows ranked best first within each group) of up to ``top`` terms per group of
    which none is an ancestor of another: going down the ranking, a term that is an ancestor of one
    already taken is skipped, and a term replaces the ancestors of it already taken."""
    keep = []
    order = np.argsort(groups, kind="stable")
    for at in np.split(order, np.flatnonzero(groups[order][1:] != groups[order][:-1]) + 1):
        chosen: list[int] = []  # positions
        covered: set[int] = set()  # the chosen terms and all their ancestors
        for pos in at:
            col = int(cols[pos])
            if col in covered:
                continue
            above = set(ancestors.indices[ancestors.indptr[col]: ancestors.indptr[col + 1]].tolist())
            chosen = [p for p in chosen if int(cols[p]) not in above] + [pos]
            covered |= above
            if len(chosen) == top:
                break
        keep.extend(chosen)
    return np.sort(np.asarray(keep, dtype=np.int64))
