"""Gene Ontology (OBO 1.2) loading: terms, namespaces, is_a/part_of edges, alt_ids and obsolete terms."""
from __future__ import annotations

import io
import logging
import os
import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from index.errors import InputError
from index.textio import open_text

LOG = logging.getLogger(__name__)

#: GO namespace -> the CAFA aspect code used in annotation tables.
ASPECTS = {"molecular_function": "MFO", "biological_process": "BPO", "cellular_component": "CCO"}
#: Relations that propagate annotations upwards (the CAFA protocol).
PROPAGATING_RELATIONS = ("is_a", "part_of")

_QUOTED = re.compile(r'^"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Term:
    """One OBO ``[Term]`` stanza."""

    id: str
    name: str = ""
    namespace: str = ""
    definition: str = ""
    synonyms: tuple[str, ...] = ()
    alt_ids: tuple[str, ...] = ()
    is_a: tuple[str, ...] = ()
    part_of: tuple[str, ...] = ()
    is_obsolete: bool = False
    replaced_by: tuple[str, ...] = ()
    consider: tuple[str, ...] = ()

    @property
    def aspect(self) -> str:
        """CAFA aspect code (MFO/BPO/CCO), or the raw namespace for non-GO ontologies."""
        return ASPECTS.get(self.namespace, self.namespace)


@dataclass
class Ontology:
    """A loaded ontology. Live (non-obsolete) terms get dense indices ``0..n-1`` in file order.

    Attributes:
        terms: every term by id, obsolete ones included.
        release: the ``data-version`` header (e.g. ``releases/2021-12-15``), or "".
        alt_ids: secondary id -> primary id.
    """

    terms: dict[str, Term]
    release: str = ""
    alt_ids: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_obo(cls, path: str | os.PathLike) -> "Ontology":
        """Parse an OBO file (plain or gzipped). ``[Typedef]`` and other stanzas are skipped."""
        terms: dict[str, Term] = {}
        release = ""
        stanza: dict[str, list[str]] | None = None
        kind = "header"
        last = "\n"
        with open_text(path) as fh:
            text = fh.read()  # one checked read, then lines from memory: 0.6 s less for all of GO
        for line in io.StringIO(text):
            last = line
            line = line.strip()
            if line.startswith("["):
                if kind == "Term" and stanza:
                    _add_term(terms, stanza, path)
                kind, stanza = line.strip("[]"), {}
                continue
            if not line or line.startswith("!") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            value = value.strip()
            if kind == "header" and key == "data-version":
                release = value
            elif kind == "Term":
                stanza.setdefault(key, []).append(value)
        if not last.endswith("\n"):  # a download or copy cut short ends mid-line
            raise InputError(f"{path}: truncated (the last line is incomplete)")
        if kind == "Term" and stanza:
            _add_term(terms, stanza, path)
        if not terms:
            raise InputError(f"{path}: no [Term] stanzas found; is this an OBO file?")
        alt_ids = {alt: t.id for t in terms.values() for alt in t.alt_ids}
        onto = cls(terms=terms, release=release, alt_ids=alt_ids)
        LOG.info("Loaded %s: %d terms (%d live, %d obsolete), %d alt_ids, %d propagation edges",
                 path, len(terms), len(onto.live_ids), len(terms) - len(onto.live_ids),
                 len(alt_ids), len(onto.edges[0]))
        return onto

    @cached_property
    def live_ids(self) -> list[str]:
        """Ids of non-obsolete terms, in file order; position = term index."""
        return [t.id for t in self.terms.values() if not t.is_obsolete]

    @cached_property
    def index(self) -> dict[str, int]:
        """Live term id -> dense index."""
        return {term_id: i for i, term_id in enumerate(self.live_ids)}

    @cached_property
    def namespaces(self) -> np.ndarray:
        """Namespace of every live term (object array aligned with ``live_ids``)."""
        return np.array([self.terms[t].namespace for t in self.live_ids], dtype=object)

    @cached_property
    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """(child, parent) index arrays of is_a and part_of edges between live terms of one namespace.

        Edges that cross namespaces are left out, as in the CAFA evaluator: a prediction in one
        aspect never creates one in another.
        """
        child, parent = [], []
        for i, term_id in enumerate(self.live_ids):
            term = self.terms[term_id]
            for p in dict.fromkeys(term.is_a + term.part_of):
                j = self.index.get(p)
                if j is not None and self.terms[p].namespace == term.namespace:
                    child.append(i)
                    parent.append(j)
        return np.array(child, dtype=np.int64), np.array(parent, dtype=np.int64)

    @cached_property
    def roots(self) -> np.ndarray:
        """Indices of live terms without a parent in their namespace (the three GO roots)."""
        has_parent = np.zeros(len(self.live_ids), dtype=bool)
        has_parent[self.edges[0]] = True
        return np.flatnonzero(~has_parent)

    def parent_names(self, term_id: str) -> list[str]:
        """Names of a live term's is_a and part_of parents in its namespace (empty for unknown ids)."""
        i = self.index.get(term_id)
        if i is None:
            return []
        child, parent = self.edges
        return [self.terms[self.live_ids[j]].name for j in parent[child == i]]

    def resolve(self, term_id: str, follow_replaced_by: bool = True) -> str | None:
        """Map an id to a live primary id.

        alt_ids map to their primary term; an obsolete term maps to its single ``replaced_by`` when
        ``follow_replaced_by`` (never to ``consider``, which is advice, not an equivalence).

        Returns:
            The live id, or None when the id is unknown or obsolete without a usable replacement.
        """
        term_id = self.alt_ids.get(term_id, term_id)
        term = self.terms.get(term_id)
        if term is None:
            return None
        if term.is_obsolete:
            if follow_replaced_by and len(term.replaced_by) == 1:
                return self.resolve(term.replaced_by[0], follow_replaced_by=False)
            return None
        return term_id

    def resolve_many(self, term_ids, follow_replaced_by: bool = True) -> tuple[np.ndarray, dict[str, int]]:
        """Vectorised :meth:`resolve` over an array of ids.

        Returns:
            (term index array with -1 for unresolvable ids, counts of ``mapped`` and ``dropped`` rows).
        """
        inverse, unique = pd.factorize(np.asarray(term_ids, dtype=object))
        resolved = [self.resolve(t, follow_replaced_by) for t in unique]
        idx = np.array([self.index[r] if r is not None else -1 for r in resolved], dtype=np.int64)
        changed = np.array([r is not None and r != t for r, t in zip(resolved, unique)], dtype=bool)
        return idx[inverse], {"mapped": int(changed[inverse].sum()), "dropped": int((idx[inverse] < 0).sum())}


def _add_term(terms: dict[str, Term], stanza: dict[str, list[str]], path) -> None:
    ids = stanza.get("id")
    if not ids:
        raise InputError(f"{path}: a [Term] stanza has no id")
    if not stanza.get("name"):  # required by the OBO format; missing in a file cut after an id line
        raise InputError(f"{path}: term {ids[0]} has no name (a truncated file?)")
    relations = [r.split() for r in stanza.get("relationship", [])]
    terms[ids[0]] = Term(
        id=ids[0],
        name=stanza.get("name", [""])[0],
        namespace=stanza.get("namespace", [""])[0],
        definition=_unquote(stanza.get("def", [""])[0]),
        synonyms=tuple(_unquote(s) for s in stanza.get("synonym", [])),
        alt_ids=tuple(stanza.get("alt_id", [])),
        is_a=tuple(_strip_comment(v) for v in stanza.get("is_a", [])),
        part_of=tuple(r[1] for r in relations if len(r) > 1 and r[0] == "part_of"),
        is_obsolete=stanza.get("is_obsolete", ["false"])[0] == "true",
        replaced_by=tuple(_strip_comment(v) for v in stanza.get("replaced_by", [])),
        consider=tuple(_strip_comment(v) for v in stanza.get("consider", [])),
    )


def _unquote(value: str) -> str:
    """``"text" [refs]`` -> ``text`` (OBO quoted strings with backslash escapes)."""
    match = _QUOTED.match(value)
    return match.group(1).replace('\\"', '"') if match else value


def _strip_comment(value: str) -> str:
    return value.split("!")[0].strip()
