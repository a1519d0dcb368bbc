"""Atomic writers for prediction tables (TSV and the CAFA submission format)."""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path
from typing import IO, Iterator

import pandas as pd

from index.errors import InputError


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike | None) -> Iterator[IO[str]]:
    """Write to a temporary file beside ``path`` and rename it into place only on success.

    A crash or Ctrl-C leaves no half-written file. ``None`` or ``"-"`` writes to stdout.
    """
    if path is None or str(path) == "-":
        yield sys.stdout
        return
    path = Path(path)
    if not path.parent.exists() or not os.access(path.parent, os.W_OK):
        raise InputError(f"{path}: cannot write here (folder missing or not writable)")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_tsv(predictions: pd.DataFrame, fh: IO[str]) -> None:
    """prot-retrieve TSV: header ``protein_id term_id score`` then any extra columns (name, aspect ...)."""
    table = predictions.rename(columns={"protein": "protein_id", "term": "term_id"})
    table.to_csv(fh, sep="\t", index=False, float_format="%.4g")


def write_cafa(predictions: pd.DataFrame, fh: IO[str], author: str = "prot-retrieve", model: int = 1) -> None:
    """CAFA submission format: AUTHOR/MODEL/KEYWORDS header, ``target term score`` rows (2 decimals), END."""
    fh.write(f"AUTHOR\t{author}\nMODEL\t{model}\nKEYWORDS\tmachine learning, sequence alignment.\n")
    rows = predictions[predictions["score"] >= 0.005]
    rows[["protein", "term"]].assign(score=rows["score"].map("{:.2f}".format)).to_csv(
        fh, sep="\t", index=False, header=False)
    fh.write("END\n")
