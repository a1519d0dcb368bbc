"""Propagation over a DAG: labels to all ancestors, and scores so that a parent >= each child.

Both run on index arrays and sparse matrices, so 3,000 proteins x 44k GO terms take about a second.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from index.errors import InputError

#: Size of the dense (closure x items) block max-propagated at a time.
BLOCK_BYTES = 2e8


class Propagator:
    """Ancestor closure and max-propagation for a DAG given as (child, parent) edge arrays.

    Args:
        n_terms: number of nodes (term indices are ``0..n_terms-1``).
        child: child index of each edge.
        parent: parent index of each edge.
    """

    def __init__(self, n_terms: int, child: np.ndarray, parent: np.ndarray):
        self.n_terms = n_terms
        self.child = np.asarray(child, dtype=np.int64)
        self.parent = np.asarray(parent, dtype=np.int64)
        self.ancestors = self._closure()
        self._levels = self._edge_levels()

    @classmethod
    def from_ontology(cls, ontology) -> "Propagator":
        """Build from an :class:`index.ontology.Ontology` (is_a + part_of within each namespace)."""
        child, parent = ontology.edges
        return cls(len(ontology.live_ids), child, parent)

    def _closure(self) -> sp.csr_matrix:
        """Boolean (term x term) matrix, row t = t and all its ancestors; by repeated squaring."""
        n = self.n_terms
        step = sp.csr_matrix((np.ones(len(self.child), dtype=bool), (self.child, self.parent)), shape=(n, n))
        closure = (sp.identity(n, dtype=bool, format="csr") + step).astype(bool)
        while True:
            grown = (closure @ closure).astype(bool)
            if grown.nnz == closure.nnz:
                break
            closure = grown
        closure.sort_indices()
        return closure

    def _edge_levels(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Edges grouped by the height of their child (leaves = 0), each group sorted by parent.

        Processing the groups in order guarantees a child's score is final before it is pushed up.
        """
        levels = []
        edge_height = self.heights()[self.child]
        for h in np.unique(edge_height):
            sel = np.flatnonzero(edge_height == h)
            sel = sel[np.argsort(self.parent[sel], kind="stable")]
            levels.append((self.child[sel], self.parent[sel]))
        return levels

    def heights(self) -> np.ndarray:
        """Each term's longest path down to a leaf (leaves = 0).

        Relaxed over all edges at once, one pass per level of the DAG (19 for GO, against
        a Python loop over 44,000 terms).
        """
        height = np.zeros(self.n_terms, dtype=np.int64)
        if len(self.child) == 0:
            return height
        order = np.argsort(self.parent, kind="stable")
        child, parent = self.child[order], self.parent[order]
        starts = np.flatnonzero(np.r_[True, parent[1:] != parent[:-1]])
        parents = parent[starts]
        for _ in range(self.n_terms):
            grown = np.maximum.reduceat(height[child] + 1, starts)
            if np.array_equal(grown, height[parents]):
                return height
            height[parents] = grown
        raise InputError("the ontology's edges form a cycle: is_a and part_of must make a DAG")

    def propagate_labels(self, labels: sp.spmatrix) -> sp.csr_matrix:
        """Close a boolean (items x terms) label matrix under the ancestor relation."""
        return (sp.csr_matrix(labels, dtype=bool) @ self.ancestors).astype(bool).tocsr()

    def closure_of(self, terms: np.ndarray) -> np.ndarray:
        """Sorted unique indices of ``terms`` and all their ancestors."""
        given = np.zeros(self.n_terms, dtype=bool)  # masks, not np.unique: no sort of 100,000s of terms
        given[np.asarray(terms, dtype=np.int64)] = True
        closed = np.zeros(self.n_terms, dtype=bool)
        closed[self.ancestors[np.flatnonzero(given)].indices] = True
        return np.flatnonzero(closed)

    def max_propagate(self, scores: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
        """Make scores DAG-consistent: every term's score becomes the max over itself and its descendants.

        Args:
            scores: (items x len(columns)) array; column j holds term ``columns[j]``.
            columns: the term index of each column, ancestor-closed (see :meth:`closure_of`);
                all terms when None.

        Returns:
            A new array of the same shape and float dtype.
        """
        if columns is None:
            columns = np.arange(self.n_terms)
        by_term = np.array(np.asarray(scores).T, order="C")  # a copy, rows = terms: contiguous updates
        self._push_up(by_term, self._positions(columns))
        return by_term.T.copy()

    def max_propagate_triples(self, items: np.ndarray, terms: np.ndarray, scores: np.ndarray,
                              n_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Max-propagate sparse (item, term, score) triples: the nonzero (item, term, score) triples
        of the result, in no particular order.

        Works item-block by item-block on the dense closure of the predicted terms, so memory stays
        bounded for dense prediction files.
        """
        items = np.asarray(items, dtype=np.int64)
        terms = np.asarray(terms, dtype=np.int64)
        scores = np.asarray(scores)
        columns = self.closure_of(terms)
        position = self._positions(columns)
        out = []
        block = max(1, int(BLOCK_BYTES // max(len(columns), 1) // scores.itemsize))
        for start in range(0, n_items, block):
            stop = min(n_items, start + block)
            sel = (items >= start) & (items < stop)
            width = stop - start
            by_term = np.zeros((len(columns), width), dtype=scores.dtype)
            at = torch.from_numpy(position[terms[sel]] * width + items[sel] - start)
            torch.from_numpy(by_term).view(-1).scatter_reduce_(0, at, torch.from_numpy(scores[sel]), "amax")
            self._push_up(by_term, position)
            flat = np.flatnonzero(by_term)
            out.append((flat % width + start, columns[flat // width], by_term.ravel()[flat]))
        if not out:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=scores.dtype)
        return tuple(np.concatenate(part) for part in zip(*out))

    def max_propagate_pairs(
        self, items: np.ndarray, terms: np.ndarray, scores: np.ndarray, n_items: int
    ) -> sp.csr_matrix:
        """:meth:`max_propagate_triples` as an (n_items x n_terms) CSR matrix."""
        rows, cols, values = self.max_propagate_triples(items, terms, scores, n_items)
        return sp.csr_matrix((values, (rows, cols)), shape=(n_items, self.n_terms))

    def _positions(self, columns: np.ndarray) -> np.ndarray:
        """Each term's column in ``columns`` (-1: absent)."""
        position = np.full(self.n_terms, -1, dtype=np.int64)
        position[columns] = np.arange(len(columns))
        return position

    def _push_up(self, by_term: np.ndarray, position: np.ndarray) -> None:
        """In place on (columns x items) scores: each parent takes the max of itself and its
        children, level by level from the leaves.

        torch's scatter-max, not numpy's reduceat over the children sorted by parent: 5-8 times
        faster on 17,000 columns x 256 proteins.
        """
        scores = torch.from_numpy(by_term)
        for child, parent in self._levels:
            c, p = position[child], position[parent]
            keep = c >= 0
            if not keep.all():
                if (p[keep] < 0).any():
                    raise ValueError("columns are not closed under ancestors; use closure_of()")
                c, p = c[keep], p[keep]
            if len(c) == 0:
                continue
            pushed = scores.index_select(0, torch.from_numpy(c))
            scores.scatter_reduce_(0, torch.from_numpy(p)[:, None].expand_as(pushed), pushed, "amax")


def catalogue_edges(ontology, propagator: Propagator, term_ids) -> tuple[np.ndarray, np.ndarray]:
    """(child row, parent row) edges between the catalogue functions that are ontology terms.

    When the catalogue holds every ancestor of its terms (e.g. all of live GO) the ontology's direct
    edges are enough; for a partial catalogue, ancestor pairs are used so that a kept ancestor still
    scores at least its kept descendants. Functions that are not ontology terms get no edges.
    """
    idx, _ = ontology.resolve_many(list(term_ids), follow_replaced_by=False)
    row_of = np.full(propagator.n_terms, -1, dtype=np.int64)
    present = idx >= 0
    row_of[idx[present]] = np.flatnonzero(present)
    if np.all(row_of[propagator.closure_of(idx[present])] >= 0):
        child, parent = propagator.child, propagator.parent
    else:
        pairs = propagator.ancestors[idx[present]].tocoo()
        child, parent = idx[present][pairs.row], pairs.col
    keep = (row_of[child] >= 0) & (row_of[parent] >= 0) & (child != parent)
    return row_of[child[keep]], row_of[parent[keep]]
