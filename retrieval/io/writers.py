"""Prediction writers (TSV, CAFA, GAF 2.2, JSON lines), chunk by chunk, into atomically renamed files."""
from __future__ import annotations

import contextlib
import csv
import datetime
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import IO, Iterator

import pandas as pd

from index.atomic import umask
from index.errors import InputError
from retrieval.config import OUTPUT_FORMATS as FORMATS

_GAF_ASPECT = {"MFO": "F", "BPO": "P", "CCO": "C"}
#: GAF 2.2 requires a relation in the qualifier column; these are the default gp2term relations.
_GAF_RELATION = {"MFO": "enables", "BPO": "involved_in", "CCO": "located_in"}
#: UniProtKB accession syntax (uniprot.org/help/accession_numbers), for GAF With/From.
_UNIPROT_ACCESSION = re.compile(r"^(?:[OPQ][0-9][A-Z0-9]{3}[0-9]|[A-NR-Z][0-9](?:[A-Z][A-Z0-9]{2}[0-9]){1,2})$")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike | None, inputs: tuple[str | os.PathLike, ...] = (),
                  binary: bool = False) -> Iterator[IO]:
    """Write to a temporary file beside ``path`` and rename it into place only on success.

    A crash, Ctrl-C or SIGTERM leaves no half-written file. ``None`` or ``"-"`` writes to stdout; a
    FIFO or a device (``/dev/null``) is written directly, never replaced; a symbolic link is
    followed, so the file it points to is replaced and the link stays. The file gets the usual
    permissions (0666 less the umask), not the temporary file's 0600. ``inputs`` are the command's
    input files, which the output must not replace. ``binary`` opens it for bytes (Parquet).
    """
    if path is None or str(path) == "-":
        yield sys.stdout.buffer if binary else sys.stdout
        return
    path = Path(os.path.realpath(path))
    if any(path == Path(os.path.realpath(i)) for i in inputs):
        raise InputError(f"{path}: the output would overwrite an input file")
    if path.exists() and not path.is_file() and not path.is_dir():
        with _opened(path, "ab" if binary else "a") as fh:  # FIFO, character device: nothing to replace
            yield fh
        return
    if not path.parent.is_dir() or not os.access(path.parent, os.W_OK) or path.is_dir():
        raise InputError(f"{path}: cannot write here (folder missing, not writable, or a folder)")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise InputError(f"{path}: cannot write here ({err.strerror})") from None
    try:
        with (os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")) as fh:
            yield fh
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise InputError(f"{path}: writing failed ({err.strerror})") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def _opened(path: Path, mode: str) -> Iterator[IO]:
    try:
        fh = open(path, mode) if "b" in mode else open(path, mode, encoding="utf-8")
    except OSError as err:
        raise InputError(f"{path}: cannot write here ({err.strerror})") from None
    try:
        with fh:
            yield fh
    except OSError as err:  # a full device (/dev/full), a closed pipe
        raise InputError(f"{path}: writing failed ({err.strerror})") from None


class PredictionWriter:
    """Writes prediction chunks (protein_id, term_id, score[, aspect, name, evidence...]) in one format.

    Every format that can carry it records the provenance (tool version, model, index, GO release,
    references, search tool): ``#`` comment lines above the TSV header, a ``provenance`` field in
    every JSON line, ``!`` header lines in GAF, the schema metadata of Parquet (one row group per
    chunk; the TSV columns). The CAFA format has no room for it.

    Args:
        fh: open text stream.
        fmt: tsv | cafa | gaf | jsonl | parquet (``fh`` then a binary stream; needs pyarrow).
        provenance: what made the predictions, by name.
        db: GAF DB column for proteins whose header names no database (UniProt headers do).
        taxon: GAF taxon for proteins whose header has no ``OX=`` / ``taxon=`` tag.
        started: the stream already holds the header (a resumed run appends to it).
    """

    def __init__(self, fh: IO[str], fmt: str = "tsv", provenance: dict[str, str] | None = None, db: str = "",
                 taxon: str = "", started: bool = False):
        if fmt not in FORMATS:
            raise InputError(f"unknown output format {fmt!r} (choose from {', '.join(FORMATS)})")
        self.fh, self.fmt, self.provenance = fh, fmt, provenance or {}
        self.db, self.taxon = db, taxon
        self._gaf: dict[str, tuple[str, str, str]] = {}  # protein id -> (db, symbol, taxon), filled by note()
        self._started = started
        self._parquet = None  # pyarrow.parquet.ParquetWriter, opened with the first chunk's schema
        if fmt == "parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise InputError("--format parquet needs pyarrow (pip install prot-retrieve[parquet])") from None

    def note(self, record) -> None:
        """Remember what GAF needs of a protein's header (its database, symbol and taxon)."""
        if self.fmt == "gaf":
            self._gaf[record.id] = (record.db, record.symbol, record.taxon)

    def write(self, chunk: pd.DataFrame, records=None) -> None:
        """Write predictions; ``records``: the proteins of ``chunk``, whose headers GAF reads (instead
        of what :meth:`note` kept)."""
        if records is not None and self.fmt == "gaf":
            self._gaf = {r.id: (r.db, r.symbol, r.taxon) for r in records}
        if not self._started:
            self._header(chunk)
            self._started = True
        if chunk.empty:
            return
        {"tsv": self._rows_tsv, "cafa": self._rows_cafa, "gaf": self._rows_gaf, "jsonl": self._rows_jsonl,
         "parquet": self._rows_parquet}[self.fmt](chunk)

    def close(self) -> None:
        if not self._started:
            self._header(pd.DataFrame(columns=["protein_id", "term_id", "score"]))
        if self.fmt == "cafa":
            self.fh.write("END\n")
        if self.fmt == "parquet":
            if self._parquet is None:  # no prediction at all: still a valid file with the columns
                self._rows_parquet(pd.DataFrame({"protein_id": pd.Series(dtype=str), "term_id": pd.Series(dtype=str),
                                                 "score": pd.Series(dtype="float64"), "aspect": pd.Series(dtype=str),
                                                 "name": pd.Series(dtype=str)}))
            self._parquet.close()
        self.fh.flush()

    def _header(self, chunk: pd.DataFrame) -> None:
        if self.fmt == "tsv":
            self.fh.writelines(f"# {k}: {v}\n" for k, v in self.provenance.items())
            self.fh.write("\t".join(chunk.columns) + "\n")
        elif self.fmt == "cafa":
            self.fh.write("AUTHOR\tprot-retrieve\nMODEL\t1\nKEYWORDS\tmachine learning, sequence alignment.\n")
        elif self.fmt == "gaf":
            self.fh.write(f"!gaf-version: 2.2\n!generated-by: prot-retrieve\n!date-generated: {_today('-')}\n")
            self.fh.writelines(f"!{k}: {v}\n" for k, v in self.provenance.items())

    def _rows_tsv(self, chunk: pd.DataFrame) -> None:
        # Fields never hold a tab or a line break (ids are a header's first word, names a TSV cell),
        # so they are written as they are: a quote in an id stays one quote.
        chunk.to_csv(self.fh, sep="\t", index=False, header=False, float_format="%.4g", quoting=csv.QUOTE_NONE)

    def _rows_cafa(self, chunk: pd.DataFrame) -> None:
        rows = chunk[chunk["score"] >= 0.005]  # two decimals: smaller scores print as 0.00
        pd.DataFrame({"p": rows["protein_id"], "t": rows["term_id"], "s": rows["score"].map("{:.2f}".format)}).to_csv(
            self.fh, sep="\t", index=False, header=False, quoting=csv.QUOTE_NONE)

    def _rows_gaf(self, chunk: pd.DataFrame) -> None:
        reference = "prot-retrieve:" + self.provenance.get("model", "model")
        support = chunk["support_protein"] if "support_protein" in chunk else pd.Series("", index=chunk.index)
        for r, supporter in zip(chunk.itertuples(index=False), support):
            aspect = getattr(r, "aspect", "")
            if aspect not in _GAF_ASPECT:
                continue  # GAF carries GO terms only
            db, symbol, taxon = self._gaf.get(r.protein_id, ("", r.protein_id, ""))
            db, taxon = db or self.db, taxon or self.taxon
            if not db:
                raise InputError(f"protein {r.protein_id}: GAF needs its database (DB column): give UniProt headers "
                                 "(>sp|ACC|NAME) or --db")
            if not taxon:
                raise InputError(f"protein {r.protein_id}: GAF needs its taxon: add OX= or taxon= to the FASTA "
                                 "header, or give --taxon")
            with_from = f"UniProtKB:{supporter}" if supporter and _UNIPROT_ACCESSION.match(str(supporter)) else ""
            self.fh.write("\t".join([db, r.protein_id, symbol, _GAF_RELATION[aspect], r.term_id, reference, "IEA",
                                     with_from, _GAF_ASPECT[aspect], "", "", "protein", f"taxon:{taxon}",
                                     _today(""), "prot-retrieve", "", ""]) + "\n")

    def _rows_parquet(self, chunk: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(chunk, preserve_index=False)
        if self._parquet is None:
            schema = table.schema.with_metadata({"prot-retrieve": json.dumps(self.provenance)})
            self._parquet = pq.ParquetWriter(self.fh, schema)
        self._parquet.write_table(table.cast(self._parquet.schema))

    def _rows_jsonl(self, chunk: pd.DataFrame) -> None:
        for protein, group in chunk.groupby("protein_id", sort=False):
            preds = group.drop(columns="protein_id").to_dict(orient="records")
            self.fh.write(json.dumps({"protein_id": protein, "predictions": preds,
                                      "provenance": self.provenance}) + "\n")


def _today(sep: str) -> str:
    return datetime.date.today().strftime(f"%Y{sep}%m{sep}%d")
