"""Time `evaluate` on the full CAFA3 benchmark with a dense synthetic prediction file; prints a table.

    python benchmarks/evaluate_speed.py [--data ../shared/data] [--terms 3000]

Every one of the 3,329 targets gets --terms random live GO terms with random scores (seeded), the
worst case for propagation; the time covers reading the file, propagation and all metrics.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click
import numpy as np
import pandas as pd

from index.ontology import Ontology
from retrieval.evaluation import evaluate_files
from retrieval.io.fasta import read_fasta

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=str(DEFAULT_DATA), show_default=True)
@click.option("--terms", default=3000, show_default=True, help="Predicted terms per target.")
def main(data: str, terms: int) -> None:
    data = Path(data)
    bench = data / "test_cafa3_benchmark"
    obo = data / "go" / "go-basic_2021-12-15.obo.gz"
    targets = [r.id for r in read_fasta(bench / "targets.fasta")]
    live = np.array(Ontology.from_obo(obo).live_ids, dtype=object)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dense.tsv"
        table = pd.DataFrame({"protein": np.repeat(np.array(targets, dtype=object), terms),
                              "term": live[rng.integers(0, len(live), terms * len(targets))],
                              "score": np.round(rng.random(terms * len(targets)), 3)})
        table.to_csv(path, sep="\t", header=False, index=False)
        size_mb = path.stat().st_size / 2**20
        start = time.perf_counter()
        evaluate_files(path, bench / "ground_truth_isa_propagated.tsv", obo)
        seconds = time.perf_counter() - start
    click.echo(pd.DataFrame([{"targets": len(targets), "rows": len(table), "file_MB": round(size_mb, 1),
                              "evaluate_s": round(seconds, 1)}]).to_string(index=False))


if __name__ == "__main__":
    main()
