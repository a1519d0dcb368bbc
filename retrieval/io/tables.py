"""Annotation, prediction and id-list tables, read with errors that name the line."""
from __future__ import annotations

import csv
import io
import os
import re

import numpy as np
import pandas as pd

from index.errors import InputError
from index.textio import open_text, read_headed_tsv

#: Lines of the CAFA submission format that carry no prediction: a keyword, then a space or the line's end.
_CAFA_LINE = re.compile(r"^(?:AUTHOR|MODEL|KEYWORDS|ACCURACY|END)(?:[ \t]|$)")
#: A prediction row (protein, term, score), which a protein id such as "MODEL" must still be read as.
_PREDICTION = re.compile(r"^\S+\s+\S+\s+[-+0-9.eE]+\s*$")


def read_annotations(path: str | os.PathLike) -> pd.DataFrame:
    """Read an annotation table: header ``EntryID<TAB>term[<TAB>aspect]``, one (protein, term) per row.

    Returns:
        DataFrame with columns ``protein``, ``term`` and ``aspect`` ("" when absent), duplicates removed.
    """
    table = read_headed_tsv(path, required=("EntryID", "term"), optional=("aspect",))
    if table.empty:
        raise InputError(f"{path}: the annotation table has a header but no rows")
    table = table.rename(columns={"EntryID": "protein"}).drop(columns="_line")
    return table.drop_duplicates(["protein", "term"]).reset_index(drop=True)


def read_id_list(path: str | os.PathLike) -> list[str]:
    """One id per line (first whitespace-separated word); blank lines ignored."""
    with open_text(path) as fh:
        ids = [line.split()[0] for line in fh if line.strip()]
    if not ids:
        raise InputError(f"{path}: no ids found")
    return ids


def read_predictions(path: str | os.PathLike) -> pd.DataFrame:
    """Read predictions as ``protein term score`` rows.

    Accepts the CAFA submission format (AUTHOR/MODEL/KEYWORDS/ACCURACY/END lines, whitespace-
    separated fields) and prot-retrieve's TSV (a tab-separated header naming ``protein_id``,
    ``term_id`` and ``score``; other columns are ignored).

    Returns:
        DataFrame with columns ``protein``, ``term`` (str) and ``score`` (float64 in [0, 1]: float32 would
        move scores such as 0.33 across the evaluation thresholds).
    """
    try:
        with open(path, "rb") as fh:
            is_parquet = fh.read(4) == b"PAR1"
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    if is_parquet:
        return _parquet_predictions(path)
    with open_text(path) as fh:
        text = "".join(line for line in fh if not _is_header_line(line))
    first = text.lstrip("\n").split("\n", 1)[0]
    fields = first.split()
    if not fields:
        raise InputError(f"{path}: no predictions found")
    if len(fields) >= 3 and _is_number(fields[2]):
        table = pd.read_csv(io.StringIO(text), sep=r"\s+", header=None, usecols=[0, 1, 2],
                            names=["protein", "term", "score"], dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE)
    else:
        names = first.split("\t")
        if not {"protein_id", "term_id", "score"} <= set(names):
            raise InputError(f"{path}: expected 'protein term score' rows or a tab-separated header naming "
                             f"protein_id, term_id and score (first line: {first[:80]!r})")
        table = pd.read_csv(io.StringIO(text), sep="\t", usecols=["protein_id", "term_id", "score"], dtype=str,
                            keep_default_na=False, quoting=csv.QUOTE_NONE).rename(
            columns={"protein_id": "protein", "term_id": "term"})
    scores = pd.to_numeric(table["score"], errors="coerce")
    bad = np.flatnonzero((scores.isna() | (scores < 0) | (scores > 1)).to_numpy())
    if len(bad):
        row = table.iloc[bad[0]]
        raise InputError(f"{path}: prediction ({row['protein']}, {row['term']}): score {row['score']!r} "
                         f"is not a number in [0, 1]")
    return pd.DataFrame({"protein": table["protein"].to_numpy(dtype=str), "term": table["term"].to_numpy(dtype=str),
                         "score": scores.to_numpy(dtype=np.float64)})


def _parquet_predictions(path) -> pd.DataFrame:
    try:
        table = pd.read_parquet(path, columns=["protein_id", "term_id", "score"])
    except ImportError:
        raise InputError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    except Exception as err:  # pyarrow raises its own types for corrupt files and missing columns
        raise InputError(f"{path}: unreadable Parquet predictions ({str(err).splitlines()[0][:120]})") from None
    return pd.DataFrame({"protein": table["protein_id"].astype(str).to_numpy(),
                         "term": table["term_id"].astype(str).to_numpy(),
                         "score": table["score"].to_numpy(dtype=np.float64)})


def _is_header_line(line: str) -> bool:
    """CAFA keyword lines and ``#`` comments (prot-retrieve's provenance) carry no prediction."""
    line = line.rstrip("\r\n")
    return line.startswith("#") or (bool(_CAFA_LINE.match(line)) and not _PREDICTION.match(line))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_ia(path: str | os.PathLike) -> pd.Series:
    """Information accretion file: ``term<TAB>ia`` per line (cafaeval's format, no header)."""
    with open_text(path) as fh:
        table = pd.read_csv(fh, sep=r"\s+", header=None, names=["term", "ia"], dtype={"term": str},
                            usecols=[0, 1])
    ia = pd.to_numeric(table["ia"], errors="coerce")
    if table.empty or ia.isna().any():
        raise InputError(f"{path}: expected 'term ia' lines with numeric ia values")
    if (ia < 0).any():
        raise InputError(f"{path}: term {table['term'][ia < 0].iloc[0]}: negative information accretion")
    return pd.Series(ia.to_numpy(dtype=np.float64), index=table["term"].to_numpy())
