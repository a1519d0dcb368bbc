"""The function catalogue: the list of functions a protein can be matched to (GO or free text)."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import IO

import pandas as pd

from index.errors import InputError
from index.textio import first_duplicate, read_headed_tsv

COLUMNS = ("term_id", "name", "description", "aspect")
#: The aspects a function may have: GO's three, or none (a function written in plain words).
ASPECTS = ("MFO", "BPO", "CCO", "")


@dataclass
class FunctionCatalogue:
    """Functions with an id, a name, a description and an optional aspect (row i = function i).

    Any id is allowed: GO ids, EC numbers or free-text functions of the user's own.
    """

    table: pd.DataFrame

    def __post_init__(self):
        # Tabs and line breaks inside a text would break the TSV round trip: they become spaces
        # (column by column, only where there are any: a regex over every cell of GO took 0.4 s).
        self.table = self.table[list(COLUMNS)].reset_index(drop=True).astype(str)
        self._sha256: str | None = None
        for column in COLUMNS:
            texts = self.table[column]
            if texts.str.contains(r"[\t\r\n]", regex=True).any():
                self.table[column] = texts.str.replace(r"[\t\r\n]+", " ", regex=True)

    def __len__(self) -> int:
        return len(self.table)

    @property
    def ids(self) -> list[str]:
        return self.table["term_id"].tolist()

    @classmethod
    def from_tsv(cls, path: str | os.PathLike) -> "FunctionCatalogue":
        """Read ``functions.tsv``: header with term_id, name, description and optionally aspect.

        Raises:
            InputError: missing columns, an empty id/name, or a duplicate id (naming the line).
        """
        table = read_headed_tsv(path, required=("term_id", "name"), optional=("description", "aspect"))
        for column in ("term_id", "aspect"):
            padded = table[column] != table[column].str.strip()
            if padded.any():
                row = table[padded].iloc[0]
                raise InputError(f"{path}:{row['_line']}: {column} {row[column]!r} has spaces around it")
        wrong = ~table["aspect"].isin(ASPECTS)
        if wrong.any():
            row = table[wrong].iloc[0]
            raise InputError(f"{path}:{row['_line']}: aspect {row['aspect']!r} is not one of MFO, BPO, CCO (or empty, "
                             "for a function in plain words)")
        duplicate = first_duplicate(table, "term_id")
        if duplicate:
            raise InputError(f"{path}:{duplicate[1]}: duplicate term_id '{duplicate[0]}'")
        if table.empty:
            raise InputError(f"{path}: the catalogue has a header but no functions")
        return cls(table.drop(columns="_line"))

    @classmethod
    def from_ontology(cls, ontology) -> "FunctionCatalogue":
        """All live terms of an :class:`index.ontology.Ontology`: name, definition as description, aspect."""
        rows = [(t.id, t.name, t.definition, t.aspect) for t in map(ontology.terms.get, ontology.live_ids)]
        return cls(pd.DataFrame(rows, columns=list(COLUMNS)))

    @classmethod
    def from_texts(cls, texts: list[str]) -> "FunctionCatalogue":
        """Ad-hoc free-text functions (id = the text itself), e.g. for scoring arbitrary descriptions."""
        return cls(pd.DataFrame({"term_id": texts, "name": texts, "description": "", "aspect": ""}))

    def to_tsv(self, path: str | os.PathLike) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            self.write(fh)

    def write(self, fh: IO[str]) -> None:
        """Write as TSV verbatim (no CSV quoting: quotes in definitions stay as they are)."""
        fh.write("\t".join(COLUMNS) + "\n")
        fh.writelines("\t".join(row) + "\n" for row in self.table.itertuples(index=False))

    def texts(self, ontology=None) -> list[str]:
        """What the text tower reads per function: ``name: description`` (or just the name).

        With an :class:`index.ontology.Ontology`, terms it knows also carry their parents' names,
        ``name (parent; parent): description``: the GO graph as context for the text tower.
        """
        name, desc = self.table["name"], self.table["description"]
        if ontology is not None:
            context = ["; ".join(ontology.parent_names(t)) for t in self.table["term_id"]]
            name = [f"{n} ({c})" if c else n for n, c in zip(name, context)]
        return [f"{n}: {d}" if d else n for n, d in zip(name, desc)]

    def sha256(self) -> str:
        """Content hash of the catalogue (ids, names, descriptions, aspects), independent of file layout:
        of its rows as ``write`` puts them, tab-separated, one per line (computed once: loading an
        index checks it, and its content digest hashes it again)."""
        if self._sha256 is None:
            t = self.table
            lines = t["term_id"] + "\t" + t["name"] + "\t" + t["description"] + "\t" + t["aspect"] + "\n"
            self._sha256 = hashlib.sha256("".join(lines.tolist()).encode("utf-8")).hexdigest()
        return self._sha256
