"""The GO annotation files that UniProt and the GO Consortium publish: GAF 2.x, GPAD 1.1 / 2.0, and
UniProt's flat file (``uniprot_sprot.dat``, whose ``DR GO;`` lines carry the evidence code).

Each is streamed line by line (plain or gzipped), so a GAF of any size reads in constant memory
besides the (protein, term) pairs kept. ``NOT`` annotations are left out and counted; so are those
whose evidence is not in the chosen set and those of other species. The aspect is never read from
the file: the ontology gives it when the labels are built.
"""
from __future__ import annotations

import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator

import pandas as pd

from index.errors import InputError
from index.textio import open_text

LOG = logging.getLogger(__name__)

#: GO evidence codes by set (geneontology.org/docs/guide-go-evidence-codes). ``experimental`` is
#: CAFA's (and the shipped references'): experiments, and the curator statements TAS and IC.
EXPERIMENTAL = ("EXP", "IDA", "IPI", "IMP", "IGI", "IEP", "TAS", "IC")
#: ``curated``: every code a curator assigned, experimental, high-throughput, phylogenetic and
#: sequence-similarity ones reviewed by a person; not IEA (electronic) nor ND (no data).
CURATED = EXPERIMENTAL + ("HTP", "HDA", "HMP", "HGI", "HEP", "IBA", "IBD", "IKR", "IRD", "ISS", "ISO", "ISA", "ISM",
                          "IGC", "RCA", "NAS")
EVIDENCE = {"experimental": EXPERIMENTAL, "curated": CURATED, "all": CURATED + ("IEA",)}
#: ECO classes of GPAD for each GO evidence code (the GO Consortium's gaf-eco-mapping, default rows).
ECO = {"ECO:0000269": "EXP", "ECO:0000314": "IDA", "ECO:0000353": "IPI", "ECO:0000315": "IMP",
       "ECO:0000316": "IGI", "ECO:0000270": "IEP", "ECO:0000304": "TAS", "ECO:0000305": "IC",
       "ECO:0006056": "HTP", "ECO:0007005": "HDA", "ECO:0007001": "HMP", "ECO:0007003": "HGI",
       "ECO:0007007": "HEP", "ECO:0000318": "IBA", "ECO:0000319": "IBD", "ECO:0000320": "IKR",
       "ECO:0000321": "IRD", "ECO:0000250": "ISS", "ECO:0000266": "ISO", "ECO:0000247": "ISA",
       "ECO:0000255": "ISM", "ECO:0000317": "IGC", "ECO:0000245": "RCA", "ECO:0000303": "NAS",
       "ECO:0000501": "IEA", "ECO:0007669": "IEA", "ECO:0000256": "IEA", "ECO:0000265": "IEA",
       "ECO:0000307": "ND"}
_TAXON = re.compile(r"taxon:(\d+)")


@dataclass
class AnnotationCounts:
    """What a reader kept and left out, by reason."""

    kept: int = 0
    left_out: Counter = field(default_factory=Counter)

    def summary(self) -> str:
        out = ", ".join(f"{n:,} {why}" for why, n in sorted(self.left_out.items()))
        return f"{self.kept:,} annotations kept" + (f"; left out: {out}" if out else "")


@dataclass
class AnnotationFilter:
    """Which annotations to keep: an evidence set, and optionally only some species."""

    evidence: str = "experimental"
    taxa: tuple[str, ...] = ()

    def __post_init__(self):
        if self.evidence not in EVIDENCE:
            raise InputError(f"--evidence must be one of {', '.join(EVIDENCE)} (got {self.evidence!r})")
        bad = [t for t in self.taxa if not (t.isdigit() and int(t) > 0)]
        if bad:
            raise InputError(f"--taxon must be an NCBI taxon id such as 9606 (got {bad[0]!r})")

    def reason(self, code: str, taxon: str | None, negated: bool) -> str | None:
        """Why an annotation is left out, or None to keep it (``taxon`` None: the file does not say;
        the proteins' own taxa filter them then)."""
        if negated:
            return "NOT"
        if code not in EVIDENCE[self.evidence]:
            return f"evidence {code or 'missing'}"
        if self.taxa and taxon is not None and taxon not in self.taxa:
            return "other species"
        return None


def annotation_format(path: str | os.PathLike) -> str:
    """``gaf``, ``gpad``, ``dat`` (UniProt flat file) or ``tsv`` (this project's EntryID/term table),
    from the file's first line."""
    with open_text(path) as fh:
        first = fh.readline()
    if first.startswith("!gaf-version"):
        return "gaf"
    if first.startswith("!gpa-version") or first.startswith("!gpad-version"):
        return "gpad"
    if first.startswith("ID   "):
        return "dat"
    return "tsv"


def read_gaf(path: str | os.PathLike, keep: AnnotationFilter) -> tuple[pd.DataFrame, AnnotationCounts]:
    """(protein, term) pairs of a GAF 2.x file (protein: the DB Object ID), and the counts."""
    return _collect(path, _gaf_rows(path), keep)


def read_gpad(path: str | os.PathLike, keep: AnnotationFilter) -> tuple[pd.DataFrame, AnnotationCounts]:
    """(protein, term) pairs of a GPAD 1.1 or 2.0 file, and the counts; evidence is an ECO class,
    read as the GO code it stands for."""
    return _collect(path, _gpad_rows(path), keep)


def read_uniprot_dat(path: str | os.PathLike, keep: AnnotationFilter):
    """The proteins of a UniProt flat file (``.dat``, Biopython's SwissProt parser) and the GO
    terms of their ``DR GO;`` lines: (records, (protein, term) pairs, counts). The protein id is the
    primary accession and its taxon the ``OX`` line's."""
    from Bio import SwissProt

    from retrieval.io.fasta import ProteinRecord, check_sequence

    records, pairs, counts = [], {}, AnnotationCounts()
    with open_text(path) as fh:
        try:
            for entry in SwissProt.parse(fh):
                accession = entry.accessions[0]
                taxon = entry.taxonomy_id[0] if entry.taxonomy_id else ""
                if keep.taxa and taxon not in keep.taxa:
                    counts.left_out["proteins of other species"] += 1
                    continue
                sequence, problem = check_sequence(entry.sequence)
                if problem:
                    raise InputError(f"{path}: entry {accession}: {problem}")
                records.append(ProteinRecord(accession, sequence, entry.description, {"OX": taxon} if taxon else {},
                                             "UniProtKB", entry.entry_name))
                for reference in entry.cross_references:
                    if reference[0] != "GO":
                        continue
                    code = reference[3].split(":", 1)[0] if len(reference) > 3 else ""
                    why = keep.reason(code, taxon, negated=False)
                    if why:
                        counts.left_out[why] += 1
                    else:
                        counts.kept += 1
                        pairs[accession, reference[1]] = None
        except (ValueError, IndexError, KeyError) as err:  # Biopython's word for a malformed entry
            raise InputError(f"{path}: not a readable UniProt flat file ({str(err).splitlines()[0][:200]})") from None
    return records, _pairs(pairs), counts


def _gaf_rows(path) -> Iterator[tuple[int, str, str, str, str, bool]]:
    """(line, protein, term, evidence code, taxon, negated) per annotation line."""
    with open_text(path) as fh:
        for number, line in enumerate(fh, start=1):
            if line.startswith("!") or not line.strip():
                continue
            cols = line.rstrip("\r\n").split("\t")
            if len(cols) < 15 or not cols[1] or not cols[4].startswith("GO:"):
                raise InputError(f"{path}:{number}: not a GAF annotation line ({len(cols)} columns, 15 or 17 "
                                 "expected, with a GO id in the fifth)")
            taxon = _TAXON.match(cols[12])
            yield number, cols[1], cols[4], cols[6], taxon.group(1) if taxon else "", "NOT" in cols[3].split("|")


def _gpad_rows(path) -> Iterator[tuple[int, str, str, str, str, bool]]:
    """GPAD 2.0: DB:ID, negation, relation, term, ..., ECO in column 6; GPAD 1.1: DB, ID,
    qualifier (with NOT), term, reference, ECO in column 6."""
    version = ""
    with open_text(path) as fh:
        for number, line in enumerate(fh, start=1):
            if line.startswith("!"):
                version = version or line.split(":", 1)[-1].strip()
                continue
            if not line.strip():
                continue
            cols = line.rstrip("\r\n").split("\t")
            if version.startswith("2"):
                if len(cols) < 11 or ":" not in cols[0] or not cols[3].startswith("GO:"):
                    raise InputError(f"{path}:{number}: not a GPAD 2.0 line (DB:ID, negation, relation, GO id, ...)")
                protein, negated, term, eco = cols[0].split(":", 1)[1], cols[1] == "NOT", cols[3], cols[5]
            else:
                if len(cols) < 12 or not cols[1] or not cols[3].startswith("GO:"):
                    raise InputError(f"{path}:{number}: not a GPAD 1.1 line (12 columns, a GO id in the fourth)")
                protein, negated, term, eco = cols[1], "NOT" in cols[2].split("|"), cols[3], cols[5]
            yield number, protein, term, ECO.get(eco, eco), None, negated


def _collect(path, rows, keep: AnnotationFilter) -> tuple[pd.DataFrame, AnnotationCounts]:
    pairs, counts = {}, AnnotationCounts()  # a pair once, however many lines state it (memory: the pairs)
    for _, protein, term, code, taxon, negated in rows:
        why = keep.reason(code, taxon, negated)
        if why:
            counts.left_out[why] += 1
        else:
            counts.kept += 1
            pairs[protein, term] = None
    LOG.info("%s: %s", path, counts.summary())
    return _pairs(pairs), counts


def _pairs(pairs: dict[tuple[str, str], None]) -> pd.DataFrame:
    return pd.DataFrame(list(pairs), columns=["protein", "term"])
