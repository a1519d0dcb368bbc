"""``prot-retrieve selftest``: annotate the bundled proteins with the default pipeline and compare the
result with the golden output shipped in the package.

The golden file (``retrieval/data/selftest/golden.tsv``) is written by ``python -m
train.shipped_data --only golden`` with the shipped model, index and references. A term in it must
come back with a score within ``tolerance`` (0.01 by default), in any ``--precision``: the golden
file is computed in bf16, and fp32 moves the golden scores by at most 0.0005 (measured). The
comparison looks deeper than the golden top N, so that two near-tied terms swapping places at the
cut-off do not fail it.
"""
from __future__ import annotations

import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

SELFTEST_DATA = Path(__file__).parent / "data" / "selftest"
PROTEINS, GOLDEN = SELFTEST_DATA / "proteins.fasta", SELFTEST_DATA / "golden.tsv"
#: The golden file's own sha256 and row count, so that a damaged golden file fails the self-test.
GOLDEN_DIGEST = SELFTEST_DATA / "golden.json"
#: Predictions per protein in the golden file, and how deep the check looks for each of them.
GOLDEN_TOP, SEARCH_DEPTH = 20, 200


@dataclass
class SelftestReport:
    """What the self-test found: versions and fingerprints, and every golden row that did not match."""

    facts: dict[str, str]
    checked: int = 0
    mismatches: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.checked > 0 and not self.mismatches


def default_predictions(top: int, annotator=None, precision: str = "auto"):
    """The default pipeline's top ``top`` terms per bundled protein, and the annotator that made them."""
    from retrieval.annotate import Annotator

    annotator = annotator or Annotator.from_pretrained()
    return annotator.annotate(PROTEINS, top=top, precision=precision), annotator


def run_selftest(tolerance: float = 0.01, precision: str = "auto") -> SelftestReport:
    """Annotate the bundled proteins at ``precision`` and compare with the golden output."""
    from retrieval.models.precision import processor, resolve_precision

    golden = read_golden()
    table, annotator = default_predictions(SEARCH_DEPTH, precision=precision)
    report = SelftestReport({**_facts(annotator), "processor": str(processor()),
                             "precision": str(resolve_precision(precision))})
    found = table.set_index(["protein_id", "term_id"])["score"]
    for row in golden.itertuples(index=False):
        report.checked += 1
        score = found.get((row.protein_id, row.term_id))
        if score is None:
            report.mismatches.append(f"{row.protein_id} {row.term_id}: expected {row.score:.4f}, not predicted")
        elif abs(score - row.score) > tolerance:
            report.mismatches.append(f"{row.protein_id} {row.term_id}: expected {row.score:.4f}, got {score:.4f}")
    return report


def read_golden():
    """The golden rows, after checking the file against its recorded sha256 and row count.

    Raises:
        InputError: the golden file (or its record) is missing, changed or truncated.
    """
    import hashlib
    import json

    import pandas as pd

    from index.errors import UNREADABLE, InputError

    try:
        expected = json.loads(GOLDEN_DIGEST.read_text())
        data = GOLDEN.read_bytes()
    except UNREADABLE as err:
        raise InputError(f"selftest: cannot read the golden file or its record ({err}); reinstall prot-retrieve") \
            from None
    if hashlib.sha256(data).hexdigest() != expected.get("sha256"):
        raise InputError(f"selftest: {GOLDEN} is damaged (its sha256 is not the one recorded in "
                         f"{GOLDEN_DIGEST.name}); reinstall prot-retrieve")
    golden = pd.read_csv(GOLDEN, sep="\t", comment="#", dtype={"protein_id": str, "term_id": str})
    if len(golden) != expected.get("rows"):
        raise InputError(f"selftest: {GOLDEN} has {len(golden)} rows, {expected.get('rows')} recorded")
    return golden


def _facts(annotator) -> dict[str, str]:
    import faiss
    import torch

    search = annotator.homology
    described = search.describe() if search is not None else {"searcher": "none", "version": ""}
    return {"prot-retrieve": metadata.version("prot-retrieve"), "python": platform.python_version(),
            "torch": torch.__version__, "faiss": faiss.__version__,
            "search": f"{described['searcher']} {described['version']}".strip(),
            "model": annotator.model.fingerprint(),
            "GO release": annotator.index.config["build"].get("ontology_release", ""),
            "references": ", ".join(r.fingerprint() for r in (search.references if search else [])) or "none"}
