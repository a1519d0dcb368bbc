"""A set of proteins with sequences and GO annotations: training data and homology references."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import pandas as pd

from index.errors import InputError
from retrieval.io.annotations import (AnnotationCounts, AnnotationFilter, annotation_format, read_gaf, read_gpad,
                                      read_uniprot_dat)
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
    counts: AnnotationCounts | None = None  # what a GAF, GPAD or .dat reader kept and left out

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.records]

    @classmethod
    def load(cls, fasta: str | os.PathLike, annotations: str | os.PathLike | None,
             exclude_tags: dict[str, str] | None = None, skip_ids: frozenset[str] = frozenset(),
             skip_invalid: bool = False, keep: AnnotationFilter | None = None) -> "AnnotatedProteins":
        """Read sequences and annotations, dropping proteins whose header carries an excluded tag.

        Args:
            fasta: sequences (``key=value`` header tags allowed), or a UniProt flat file (``.dat``),
                which holds the annotations too (then ``annotations`` is None).
            annotations: an ``EntryID term aspect`` table, a GAF 2.x or a GPAD file
                (:mod:`retrieval.io.annotations`; the format is read off the first line).
            exclude_tags: e.g. ``{"cafa3_benchmark": "1"}`` to hold benchmark proteins out.
            skip_ids: proteins to drop as well (e.g. those another set already holds).
            skip_invalid: skip (and count) bad FASTA records instead of failing.
            keep: evidence codes and species to keep (GAF, GPAD, .dat; the species also of a TSV's
                proteins, by their FASTA taxon).
        """
        exclude_tags, keep = exclude_tags or {}, keep or AnnotationFilter()
        records, table, counts = _read(fasta, annotations, skip_invalid, keep)
        if keep.taxa:
            records = [r for r in records if r.taxon in keep.taxa]
        tagged = {r.id for r in records if any(r.tags.get(k) == v for k, v in exclude_tags.items())}
        kept = [r for r in records if r.id not in tagged and r.id not in skip_ids]
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
            raise InputError(f"{fasta}: no protein has both a sequence and an annotation in {annotations or fasta}")
        return cls(with_labels, table, frozenset(tagged), counts)


def _read(fasta, annotations, skip_invalid: bool, keep: AnnotationFilter):
    """(records, (protein, term, aspect) table, counts or None) of any supported pair of files."""
    if annotation_format(fasta) == "dat":
        if annotations:
            raise InputError(f"{fasta} is a UniProt flat file, which holds its annotations: give it alone")
        records, table, counts = read_uniprot_dat(fasta, keep)
        return records, table.assign(aspect=""), counts
    if annotations is None:
        raise InputError(f"{fasta}: give the annotations too (a TSV, GAF or GPAD file), or a UniProt .dat alone")
    records = read_fasta(fasta, skip_invalid=skip_invalid)
    kind = annotation_format(annotations)
    if kind == "gaf":
        table, counts = read_gaf(annotations, keep)
    elif kind == "gpad":
        table, counts = read_gpad(annotations, keep)
    elif kind == "dat":
        raise InputError(f"{annotations} is a UniProt flat file: give it alone, in place of the FASTA")
    else:
        return records, read_annotations(annotations), None
    if table.empty:
        raise InputError(f"{annotations}: no annotation kept ({counts.summary()})")
    return records, table.assign(aspect=""), counts


def build_reference(source, annotations, output, obo=None, exclude_tags: dict[str, str] | None = None,
                    skip_invalid: bool = False, hold_out_terms=None, keep: AnnotationFilter | None = None,
                    overwrite: bool = False):
    """A reference folder from sequences and annotations in any supported format (see
    :meth:`AnnotatedProteins.load`), labels propagated over ``obo`` (default: the shipped GO).

    Returns:
        (the :class:`retrieval.homology.Reference`, a summary line of what was kept and left out:
        NOT annotations, other evidence, other species, obsolete ids mapped or dropped).
    """
    from index.holdout import drop_subtrees, read_term_list
    from index.ontology import Ontology
    from index.propagation import Propagator
    from retrieval.homology import Reference
    from retrieval.indexing import DEFAULT_OBO

    onto = Ontology.from_obo(obo or DEFAULT_OBO)
    propagator = Propagator.from_ontology(onto)
    data = AnnotatedProteins.load(source, annotations, exclude_tags, skip_invalid=skip_invalid, keep=keep)
    _, resolved = onto.resolve_many(data.annotations["term"])
    if hold_out_terms:
        data.annotations = drop_subtrees(data.annotations, onto, propagator, read_term_list(hold_out_terms, onto))
    reference = Reference.build(data.records, data.annotations, onto, propagator, output, overwrite)
    read = data.counts.summary() + "; " if data.counts else ""
    summary = (f"{read}{resolved['mapped']:,} annotations of alt or replaced ids mapped to current ones, "
               f"{resolved['dropped']:,} of obsolete or unknown ids dropped")
    return reference, summary
