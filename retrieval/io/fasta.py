"""Streaming FASTA reader (plain or gzipped) with validation that names file, line and record."""
from __future__ import annotations

import hashlib
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterator

from index.errors import InputError
from index.textio import open_text
from retrieval.models.alphabet import first_invalid, normalize

LOG = logging.getLogger(__name__)

_UNIPROT = re.compile(r"^(?:sp|tr)\|([^|]+)\|")
_UNIPROT_ENTRY = re.compile(r"^(?:sp|tr)\|[^|]+\|(\S+)")
_TAXON = re.compile(r"\d+")
_NO_TAXON = re.compile("").match("")


@dataclass(frozen=True)
class ProteinRecord:
    """One protein: accession, normalised sequence, the rest of the header and its ``key=value`` tags."""

    id: str
    sequence: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    db: str = ""  # the id's database when the header says (UniProtKB for sp|...|... and tr|...|...)
    entry_name: str = ""  # UniProt's entry name (NAME_HUMAN), when the header has one

    @property
    def symbol(self) -> str:
        """The gene symbol for GAF: UniProt's ``GN=`` tag, else the entry name, else the id."""
        return self.tags.get("GN") or self.entry_name or self.id

    @property
    def taxon(self) -> str:
        """NCBI taxon id from a ``taxon=`` or UniProt ``OX=`` tag ("" when absent).

        Only the leading digits count, so a malformed value like ``9606|taxon`` still reads 9606.
        """
        match = _TAXON.match(self.tags.get("taxon") or self.tags.get("OX") or "")
        return match.group(0) if match else ""


def check_sequence(raw: str) -> tuple[str, str | None]:
    """Normalise a raw sequence; returns (sequence, problem) with problem None when it is valid.

    A problem names the first invalid residue and its 1-based position, or says it is empty.
    """
    sequence = normalize(raw)
    if not sequence:
        return sequence, "empty sequence"
    bad = first_invalid(sequence)
    if bad >= 0:
        return sequence, f"invalid residue {sequence[bad]!r} at position {bad + 1}"
    return sequence, None


def uniprot_entry(header: str) -> tuple[str, str]:
    """(database, entry name) of a UniProt header (``sp|P12345|NAME_HUMAN``); ("", "") otherwise."""
    match = _UNIPROT_ENTRY.match(header.strip())
    return ("UniProtKB", match.group(1)) if match else ("", "")


def parse_header(header: str) -> tuple[str, str, dict[str, str]]:
    """Split a header line (without ``>``) into (accession, description, tags).

    ``sp|P12345|NAME_HUMAN ...`` yields ``P12345``; otherwise the first word is the id.
    """
    first, _, rest = header.strip().partition(" ")
    match = _UNIPROT.match(first)
    accession = match.group(1) if match else first
    tags = dict(tok.split("=", 1) for tok in rest.split() if "=" in tok and not tok.startswith("="))
    return accession, rest.strip(), tags


class FastaReader:
    """Iterate over the records of a FASTA file in constant memory.

    Bad records (empty sequence, duplicate id, invalid residue, a header without an id) raise
    :class:`InputError` naming ``file:line`` and the record, unless ``skip_invalid`` is set: then
    they are skipped, counted by reason in :attr:`skipped` and summarised in a warning at the end.

    Args:
        path: FASTA file, plain or ``.gz``.
        skip_invalid: skip bad records instead of failing.
    """

    def __init__(self, path: str | os.PathLike, skip_invalid: bool = False):
        self.path = path
        self.skip_invalid = skip_invalid
        self.skipped: Counter[str] = Counter()
        self.n_read = 0
        self._consumed = hashlib.sha256()  # of the lines read so far

    def consumed_digest(self) -> str:
        """sha256 of the lines read so far. When record k has just been yielded, that is every line up
        to the next record's header: the same for any file that begins with the same records, so a
        resumed run can tell that its input still starts with the proteins it finished."""
        return self._consumed.copy().hexdigest()

    def __iter__(self) -> Iterator[ProteinRecord]:
        seen: set[str] = set()
        with open_text(self.path) as fh:
            for record in self._raw_records(fh):
                checked = self._check(record, seen)
                if checked is not None:
                    self.n_read += 1
                    yield checked
        if self.skipped:
            LOG.warning("%s: skipped %d record(s): %s", self.path, sum(self.skipped.values()),
                        ", ".join(f"{n} {why}" for why, n in self.skipped.items()))
        if self.n_read == 0 and not self.skipped:
            raise InputError(f"{self.path}: no FASTA records found (expected lines starting with '>')")

    def _raw_records(self, fh) -> Iterator[tuple[str, int, list[tuple[int, str]]]]:
        header, header_line, lines = None, 0, []
        for number, line in enumerate(fh, start=1):
            self._consumed.update(line.encode())
            line = line.strip()
            if line.startswith(">"):
                if header is not None:
                    yield header, header_line, lines
                header, header_line, lines = line[1:], number, []
            elif line and not line.startswith(";"):
                if header is None:
                    raise InputError(f"{self.path}:{number}: sequence data before the first '>' header")
                lines.append((number, line))
        if header is not None:
            yield header, header_line, lines

    def _check(self, raw, seen: set[str]) -> ProteinRecord | None:
        header, header_line, lines = raw
        accession, description, tags = parse_header(header)
        sequence, problem = check_sequence("".join(part for _, part in lines))
        if not accession:
            return self._reject("header without id", f"{self.path}:{header_line}: header has no id")
        if not accession.isprintable():
            return self._reject("unprintable id", f"{self.path}:{header_line}: id {accession!r} has a control "
                                                  "character")
        where = f"record '{accession}'"
        if problem == "empty sequence":
            return self._reject("empty sequence", f"{self.path}:{header_line}: {where} has an empty sequence")
        if problem:
            line = _line_of(lines, first_invalid(sequence) + 1)
            return self._reject("invalid residues", f"{self.path}:{line}: {where}: {problem}")
        if accession in seen:
            return self._reject("duplicate id", f"{self.path}:{header_line}: duplicate id '{accession}'")
        for tag in ("taxon", "OX"):
            if tag in tags and int((_TAXON.match(tags[tag]) or _NO_TAXON).group(0) or 0) <= 0:
                return self._reject("bad taxon", f"{self.path}:{header_line}: {where}: {tag}={tags[tag]} is not an "
                                                 "NCBI taxon id such as 9606")
        seen.add(accession)
        return ProteinRecord(accession, sequence, description, tags, *uniprot_entry(header))

    def _reject(self, reason: str, message: str) -> None:
        if not self.skip_invalid:
            raise InputError(message + " (use --skip-invalid to skip such records)")
        self.skipped[reason] += 1
        LOG.debug("skipping: %s", message)
        return None


def _line_of(lines: list[tuple[int, str]], position: int) -> int:
    """File line holding the 1-based residue ``position`` of a record."""
    for number, part in lines:
        if position <= len(part):
            return number
        position -= len(part)
    return lines[-1][0] if lines else 0


def read_fasta(path: str | os.PathLike, skip_invalid: bool = False) -> list[ProteinRecord]:
    """All records of a FASTA file as a list (see :class:`FastaReader`)."""
    return list(FastaReader(path, skip_invalid=skip_invalid))
