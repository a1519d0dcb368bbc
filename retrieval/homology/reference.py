"""The reference store: annotated proteins and their propagated labels, as a folder.

```
reference/
  reference.json   counts, ontology release; "sequences": where the FASTA is, when not beside it
  sequences.fasta  the reference proteins (or the shared, gzipped FASTA that reference.json names)
  labels.npz       propagated labels: CSR (proteins x terms) + protein ids, taxa and term ids
```
The search databases are not part of the folder: they are built from its sequences into the cache,
keyed by content (:mod:`retrieval.homology.search`), so a rebuilt reference never meets a stale one.
"""
from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from index.atomic import atomic_folder
from index.errors import UNREADABLE, InputError
from retrieval.io.fasta import ProteinRecord, read_fasta

#: A taxon needs this many reference proteins annotated in an aspect to get its own term frequencies
#: (else the whole reference's count). At 500, a training query's own labels, which are in the
#: reference, move its species' frequencies by at most 0.2 %.
MIN_TAXON_PROTEINS = 500
META = "reference.json"


class Reference:
    """Annotated reference proteins and their propagated labels.

    Args:
        folder: where the reference lives.
        ids: reference protein ids (row order of ``labels``).
        terms: term ids (column order of ``labels``).
        labels: boolean CSR (proteins x terms), propagated.
        aspects: aspect of each term (MFO/BPO/CCO or "").
        taxa: NCBI taxon of each protein ("" unknown).
        sequences: the FASTA holding the proteins (it may hold more, shared by several references).
        sequence_sha256: :func:`sequence_digest` of the proteins, as recorded at build time (computed
            from the FASTA when empty); reading the sequences checks it.
    """

    def __init__(self, folder: Path, ids: np.ndarray, terms: np.ndarray, labels: sp.csr_matrix, aspects: np.ndarray,
                 taxa: np.ndarray, sequences: Path | None = None, sequence_sha256: str = ""):
        self.folder, self.ids, self.terms, self.labels, self.aspects = folder, ids, terms, labels, aspects
        self.taxa = taxa
        self.sequences = sequences or folder / "sequences.fasta"
        self._frequencies: dict[str, np.ndarray] = {}
        self._fingerprint: str | None = None
        self._sequence_sha256 = sequence_sha256

    @classmethod
    def build(cls, records: list[ProteinRecord], annotations: pd.DataFrame, ontology, propagator,
              folder: str | Path, overwrite: bool = False) -> "Reference":
        """Write a reference folder from proteins and (unpropagated) annotations (a folder of other
        files is refused unless ``overwrite``)."""
        from index.labels import label_matrix

        index = pd.Index([r.id for r in records])
        labels, _ = label_matrix(ontology, propagator, annotations["protein"], annotations["term"], index=index)
        used = np.flatnonzero(np.asarray(labels.sum(axis=0)).ravel() > 0)
        labels = labels[:, used].tocsr()
        terms = np.array(ontology.live_ids, dtype=object)[used]
        aspects = np.array([ontology.terms[t].aspect for t in terms], dtype=object)
        keep = labels.getnnz(axis=1) > 0
        records = [r for r, k in zip(records, keep) if k]
        with atomic_folder(folder, META, overwrite) as tmp:  # all or nothing; a rebuild keeps no old file
            with open(tmp / "sequences.fasta", "w") as fh:
                fh.writelines(f">{r.id}\n{r.sequence}\n" for r in records)
            save_labels(tmp / "labels.npz", labels[keep], np.array([r.id for r in records]),
                        np.array([r.taxon for r in records]), terms, aspects)
            meta = {"n_proteins": len(records), "n_terms": len(terms), "ontology_release": ontology.release,
                    "sequence_sha256": sequence_digest(records)}
            (tmp / META).write_text(json.dumps(meta, indent=2))
        return cls.load(folder)

    @classmethod
    def load(cls, folder: str | Path) -> "Reference":
        folder = Path(folder)
        try:
            meta = json.loads((folder / META).read_text()) if (folder / META).is_file() else {}
        except ValueError as err:
            raise InputError(f"{folder / META}: unreadable ({err})") from None
        sequences = folder / meta.get("sequences", "sequences.fasta")
        if not (folder / "labels.npz").is_file() or not sequences.is_file():
            raise InputError(f"{folder}: not a reference folder (build one with `prot-retrieve build-reference`)")
        try:
            z = np.load(folder / "labels.npz", allow_pickle=False)
            labels = sp.csr_matrix((np.ones(len(z["indices"]), dtype=bool), z["indices"], z["indptr"]),
                                   shape=(len(z["ids"]), len(z["terms"])))
            return cls(folder, z["ids"].astype(object), z["terms"].astype(object), labels,
                       z["aspects"].astype(object), z["taxa"].astype(object), sequences,
                       meta.get("sequence_sha256", ""))
        except UNREADABLE as err:  # truncated or not written by build-reference
            raise InputError(f"{folder / 'labels.npz'}: corrupt ({str(err).splitlines()[0][:120]}); rebuild the "
                             "reference with `prot-retrieve build-reference`") from None

    def fingerprint(self) -> str:
        """Hash of the proteins, taxa, terms, labels and sequences: the same inputs give the same
        reference, and a changed sequence gives another (computed once per loaded reference)."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for part in (self.ids, self.taxa, self.terms, self.labels.indptr, self.labels.indices):
                digest.update(np.asarray(part).astype(str if part.dtype == object else part.dtype).tobytes())
            digest.update(self.sequence_sha256.encode())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    def term_frequencies(self, taxon: str = "") -> np.ndarray:
        """Per term, the share of reference proteins annotated in its aspect that carry it.

        Counted within ``taxon`` for each aspect where the taxon has at least
        :data:`MIN_TAXON_PROTEINS` annotated proteins, over the whole reference otherwise.
        """
        if taxon not in self._frequencies:
            freq = np.zeros(len(self.terms), dtype=np.float32)
            of_taxon = self.taxa == taxon
            for cols, in_aspect, annotated in self._aspect_blocks:
                mine = annotated & of_taxon
                rows = mine if mine.sum() >= MIN_TAXON_PROTEINS else annotated
                freq[cols] = np.asarray(in_aspect[rows].sum(axis=0)).ravel() / max(int(rows.sum()), 1)
            self._frequencies[taxon] = freq
        return self._frequencies[taxon]

    @cached_property
    def _aspect_blocks(self) -> list[tuple[np.ndarray, sp.csr_matrix, np.ndarray]]:
        """Per aspect: its term columns, the labels of those columns, and which proteins have any
        (slicing the columns took most of the time of a new taxon's frequencies)."""
        blocks = []
        for aspect in pd.unique(self.aspects):
            cols = self.aspects == aspect
            in_aspect = self.labels[:, cols].tocsr()
            blocks.append((cols, in_aspect, in_aspect.getnnz(axis=1) > 0))
        return blocks

    @cached_property
    def aspect_labels(self) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
        """What every transfer needs, computed once per reference: the labels as float64, which
        aspects each protein is annotated in (proteins x aspects) and each term's aspect column."""
        stored = sp.csr_matrix(self.labels)
        # ones on the stored entries, sharing their indices (astype copied them: 0.1 s per reference)
        y = sp.csr_matrix((np.ones(stored.nnz), stored.indices, stored.indptr), shape=stored.shape)
        # the aspect blocks' order is pd.unique's, as the columns below
        in_aspect = np.stack([annotated for _, _, annotated in self._aspect_blocks], axis=1)
        col_aspect = pd.Index(pd.unique(self.aspects)).get_indexer(self.aspects)
        return y, sp.csr_matrix(in_aspect.astype(np.float64)), col_aspect

    @cached_property
    def id_index(self) -> pd.Index:
        """The protein ids as an index, for mapping hits to rows (built once: a transfer per chunk
        hashing every id again cost a tenth of a hybrid run's time after the search)."""
        return pd.Index(self.ids)

    @property
    def sequence_sha256(self) -> str:
        """The proteins' :func:`sequence_digest` (read from reference.json; computed for older folders)."""
        if not self._sequence_sha256:
            self._sequence_sha256 = sequence_digest(self._read_records())
        return self._sequence_sha256

    def records(self, by_id: dict[str, ProteinRecord] | None = None) -> list[ProteinRecord]:
        """The reference proteins, in row order of the labels, checked against the recorded digest.
        ``by_id``: the records of its sequences file (:func:`read_sequences`), when the caller has
        read them already (references that share one file)."""
        records = self._read_records(by_id)
        if self._sequence_sha256 and sequence_digest(records) != self._sequence_sha256:
            raise InputError(f"{self.sequences}: the sequences are not those the reference {self.folder} was built "
                             "with (edited since?); rebuild it with `prot-retrieve build-reference`")
        return records

    def _read_records(self, by_id: dict[str, ProteinRecord] | None = None) -> list[ProteinRecord]:
        by_id = read_sequences(self.sequences) if by_id is None else by_id
        missing = [i for i in self.ids if i not in by_id]
        if missing:
            raise InputError(f"{self.sequences}: {len(missing)} reference proteins have no sequence "
                             f"(first: {missing[0]})")
        return [by_id[i] for i in self.ids]


def read_sequences(path: Path) -> dict[str, ProteinRecord]:
    """A reference sequences file's records by id."""
    return {r.id: r for r in read_fasta(path)}


def sequence_digest(records: list[ProteinRecord]) -> str:
    """sha256 of the proteins' ids and sequences in order, whatever file holds them."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(f">{record.id}\n{record.sequence}\n".encode())
    return digest.hexdigest()


def save_labels(path: Path, labels: sp.csr_matrix, ids: np.ndarray, taxa: np.ndarray, terms: np.ndarray,
                aspects: np.ndarray) -> None:
    """Write a reference's propagated labels (the layout :meth:`Reference.load` reads)."""
    np.savez_compressed(path, indptr=labels.indptr, indices=labels.indices, ids=np.asarray(ids).astype(str),
                        taxa=np.asarray(taxa).astype(str), terms=np.asarray(terms).astype(str),
                        aspects=np.asarray(aspects).astype(str))
