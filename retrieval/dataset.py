"""A set of proteins with sequences and GO annotations: training data and homology references."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import pandas as pd

from index.errors import InputError
from retrieval.io.fasta import ProteinRecord, read_fasta
from retrieval.io.tables import read_annotations

LOG = logging.getLogger(__name__)


def parse_tag_filters(specs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``["cafa3_benchmark=1"]`` -> ``{"cafa3_benchmark": "1"}``; raises InputError on a bad spec."""
    filters = {}
    for spec in specs:
        key, sep, value = spec.partition("=")
        if not sep or not key:
            raise InputError(f"tag filter {spec!r} must look like KEY=VALUE")
        filters[key] = value
    return filters


@dataclass
class AnnotatedProteins:
    """Proteins that have both a sequence and at least one annotation.

    Attributes:
        records: the proteins, in FASTA order.
        annotations: (protein, term, aspect) rows for those proteins only.
        held_out: ids of the FASTA records dropped by an excluded tag (kept out of any other set too).
    """

    records: list[ProteinRecord]
    annotations: pd.DataFrame
    held_out: frozenset[str] = frozenset()

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.records]

    @classmethod
    def load(cls, fasta: str | os.PathLike, annotations: str | os.PathLike,
             exclude_tags: dict[str, str] | None = None, skip_ids: frozenset[str] = frozenset(),
             skip_invalid: bool = False) -> "AnnotatedProteins":
        """Read a FASTA and an annotation table, dropping proteins whose header carries an excluded tag.

        Args:
            fasta: sequences (``key=value`` header tags allowed).
            annotations: ``EntryID term aspect`` table.
            exclude_tags: e.g. ``{"cafa3_benchmark": "1"}`` to hold benchmark proteins out.
            skip_ids: proteins to drop as well (e.g. those another set already holds).
            skip_invalid: skip (and count) bad FASTA records instead of failing.
        """
        exclude_tags = exclude_tags or {}
        records = read_fasta(fasta, skip_invalid=skip_invalid)
        tagged = {r.id for r in records if any(r.tags.get(k) == v for k, v in exclude_tags.items())}
        kept = [r for r in records if r.id not in tagged and r.id not in skip_ids]
        table = read_annotations(annotations)
        annotated = set(table["protein"])
        with_labels = [r for r in kept if r.id in annotated]
        ids = {r.id for r in with_labels}
        table = table[table["protein"].isin(ids)].reset_index(drop=True)
        no_sequence = len(annotated - {r.id for r in records})
        LOG.info("%s: %d proteins, %d excluded by tag, %d skipped (already in another set), %d without "
                 "annotations, %d annotated ids without a sequence; %d kept with %d annotations", fasta, len(records),
                 len(tagged), len(records) - len(tagged) - len(kept), len(kept) - len(with_labels), no_sequence,
                 len(with_labels), len(table))
        if not with_labels:
            raise InputError(f"{fasta}: no protein has both a sequence and an annotation in {annotations}")
        return cls(with_labels, table, frozenset(tagged))
