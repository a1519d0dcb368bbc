"""Opening text files that may be gzip-compressed, and reading headed TSV tables with line-numbered errors."""
from __future__ import annotations

import gzip
import hashlib
import io
import os
import sys
import zlib
from pathlib import Path
from typing import IO

import pandas as pd

from index.errors import InputError


def hash_file(path: str | os.PathLike, digest=None):
    """``digest`` (default a new sha256) updated with the file's bytes, read in pieces."""
    digest = digest or hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest


def open_text(path: str | os.PathLike) -> IO[str]:
    """Open a plain or ``.gz`` text file for reading (gzip is detected by its magic bytes, not the name);
    ``-`` reads standard input. The file is opened once, so a pipe or a process substitution
    (``<(zcat x.gz)``) reads like a file; a UTF-8 byte-order mark is dropped.

    Reading it raises :class:`InputError` naming the file, not a traceback, when the bytes are not
    UTF-8 text (a binary file) or the gzip stream is corrupt or truncated.

    Raises:
        InputError: the file does not exist or is not readable.
    """
    try:
        raw = io.BufferedReader(_Borrowed(sys.stdin.buffer)) if str(path) == "-" else open(path, "rb")
    except OSError as err:
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    if not isinstance(raw, io.BufferedReader):  # peeking needs a buffer
        raw = io.BufferedReader(raw)
    try:
        magic = raw.peek(2)[:2]
    except OSError as err:
        raw.close()
        raise InputError(f"{path}: cannot read ({err.strerror or err})") from None
    stream = gzip.GzipFile(fileobj=raw, mode="rb") if magic == b"\x1f\x8b" else raw
    return _CheckedText(stream, Path(str(path)), closes=raw if stream is not raw else None)


class _Borrowed(io.RawIOBase):
    """A stream read through without being closed at the end (standard input stays open)."""

    def __init__(self, source):
        super().__init__()
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _CheckedText(io.TextIOWrapper):
    """UTF-8 text whose decoding and decompression errors become one-line :class:`InputError`."""

    def __init__(self, raw, path: Path, closes=None):
        super().__init__(raw, encoding="utf-8-sig")
        self._path, self._closes = path, closes

    def close(self):
        super().close()
        if self._closes is not None:  # GzipFile leaves the file it reads open
            self._closes.close()

    def read(self, *args):
        return self._guard(super().read, *args)

    def readline(self, *args):
        return self._guard(super().readline, *args)

    def __next__(self):
        return self._guard(super().__next__)

    def _guard(self, method, *args):
        try:
            return method(*args)
        except UnicodeDecodeError:
            raise InputError(f"{self._path}: not UTF-8 text (a binary file?)") from None
        except (EOFError, gzip.BadGzipFile, zlib.error) as err:
            raise InputError(f"{self._path}: corrupt or truncated gzip file ({err})") from None
        except OSError as err:
            raise InputError(f"{self._path}: cannot read ({err.strerror or err})") from None


def read_headed_tsv(
    path: str | os.PathLike,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Read a tab-separated table whose first line is a header naming its columns.

    Args:
        path: plain or gzipped TSV file.
        required: columns that must be present and non-empty in every row.
        optional: columns kept when present (filled with "" otherwise).

    Returns:
        DataFrame of strings with the required then optional columns, plus ``_line``, the 1-based
        line number of each row in the file (for error messages further on).
    """
    with open_text(path) as fh:
        header = fh.readline().rstrip("\r\n")
        if not header:
            raise InputError(f"{path}: empty file (a header line with {', '.join(required)} is required)")
        columns = header.split("\t")
        missing = [c for c in required if c not in columns]
        if missing:
            raise InputError(
                f"{path}:1: header lacks column(s) {', '.join(missing)} "
                f"(found: {', '.join(columns)}; columns must be tab-separated)"
            )
        body = fh.read()
    # A row with more fields than the header (a tab inside a text) would shift every column.
    for number, line in enumerate(body.splitlines(), start=2):
        if line.count("\t") >= len(columns):
            raise InputError(f"{path}:{number}: {line.count(chr(9)) + 1} fields where the header has "
                             f"{len(columns)} (a tab inside a field?)")
    try:
        table = pd.read_csv(io.StringIO(body), sep="\t", header=None, names=columns, dtype=str,
                            keep_default_na=False, quoting=3, on_bad_lines="error")
    except pd.errors.EmptyDataError:
        table = pd.DataFrame(columns=columns, dtype=str)
    except pd.errors.ParserError as err:
        raise InputError(f"{path}: malformed table ({str(err).strip().splitlines()[0]})") from None
    table["_line"] = range(2, len(table) + 2)
    for column in required:
        empty = table[column].str.strip() == ""
        if empty.any():
            line = int(table.loc[empty, "_line"].iloc[0])
            raise InputError(f"{path}:{line}: empty value in required column '{column}'")
    for column in optional:
        if column not in table:
            table[column] = ""
    return table[list(required) + list(optional) + ["_line"]]


def first_duplicate(table: pd.DataFrame, column: str) -> tuple[str, int] | None:
    """The first repeated value of ``column`` and its line (from ``_line``), or None."""
    duplicated = table[column].duplicated()
    if not duplicated.any():
        return None
    row = table[duplicated].iloc[0]
    return str(row[column]), int(row["_line"])
