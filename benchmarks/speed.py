"""Speed and memory of build-index and annotate on this machine; prints a table.

    python benchmarks/speed.py [--data ../shared/data] [--model DIR] [--reference DIR ... | --no-reference]
                               [--search auto|mmseqs|diamond|embedding] [--threads 2] [--embedding-cache] [--repeats 3]

Stages timed separately: building the index of all live GO (text tower + FAISS), then annotating
the 3,329 CAFA3 targets end to end (FASTA -> protein tower -> recall -> [reference search] -> re-rank
-> propagation -> top 20; the tower computed, as for a new proteome, unless --embedding-cache), the
median of --repeats runs with its time per stage; the references are the shipped ones unless
--reference or --no-reference. Loading the references is timed on its own (with
--search embedding it embeds their proteins, unless cached). Peak memory is the process's maximum
resident set size.
"""
from __future__ import annotations

import logging
import resource
import tempfile
import time
from pathlib import Path

import click
import numpy as np
import pandas as pd
import torch

from index.catalogue import FunctionCatalogue
from index.ontology import Ontology
from retrieval.annotate import AnnotateConfig, Annotator
from retrieval.homology import SEARCHERS, HomologySearch, Reference, SearchSettings
from retrieval.homology.shipped import shipped_references
from retrieval.indexing import DEFAULT_OBO, build_function_index
from retrieval.io.fasta import read_fasta
from index.vector_index import FunctionIndex
from retrieval.models.retriever import RetrievalModel
from retrieval.config import PRECISIONS
from retrieval.models.scoring import query_vectors
from machine import machine_line

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


class StageTimer:
    """Accumulates wall time per pipeline stage by wrapping the annotator's collaborators."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def wrap(self, obj, method: str, stage: str) -> None:
        original = getattr(obj, method)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start

        setattr(obj, method, timed)


def approximate_recall(model, index: FunctionIndex, records, k: int, precision: str) -> list[dict]:
    """Recall@k of approximate FAISS indexes against the exact one, on real protein queries."""
    queries = query_vectors(model.protein_encoder.encode([r.sequence for r in records], precision=precision))
    _, exact = index.search(queries, k)
    stored = index.vectors(np.arange(len(index.catalogue)))
    rows = []
    for factory in ("HNSW32", "IVF256,Flat"):
        start = time.perf_counter()
        approx = FunctionIndex.build(stored, index.catalogue, index.fingerprint, factory=factory)
        built = time.perf_counter() - start
        start = time.perf_counter()
        _, found = approx.search(queries, k)
        searched = time.perf_counter() - start
        recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(found, exact)])
        rows.append({"step": f"{factory}: build {built:.1f} s, recall@{k} vs exact {recall:.3f}",
                     "seconds": searched, "items/s": len(records) / searched})
    return rows


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=str(DEFAULT_DATA), show_default=True)
@click.option("--model", type=click.Path(exists=True, file_okay=False), help="Model folder (default: shipped model).")
@click.option("--reference", type=click.Path(exists=True, file_okay=False), multiple=True,
              help="Homology references (default: the shipped ones). Repeatable, in the model's training order.")
@click.option("--no-reference", is_flag=True, help="The two towers alone.")
@click.option("--search", "searcher", type=click.Choice(SEARCHERS), default="auto", show_default=True,
              help="How the references are searched.")
@click.option("--threads", default=2, show_default=True, help="torch threads.")
@click.option("--factory", default="Flat", show_default=True, help="FAISS factory string for the index.")
@click.option("--embedding-cache", is_flag=True,
              help="Read the protein vectors from the embedding cache (default: computed, as for a new proteome).")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True,
              help="Annotation runs; the median one is reported, with its stages (this machine drifts between runs).")
@click.option("--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True,
              help="Of the towers and the re-ranker (retrieval.models.precision).")
def main(data, model, reference, no_reference, searcher, threads, factory, embedding_cache, repeats,
         precision) -> None:
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(threads)
    rows = []
    start = time.perf_counter()
    retrieval_model = RetrievalModel.from_pretrained(model)
    ontology = Ontology.from_obo(DEFAULT_OBO)
    catalogue = FunctionCatalogue.from_ontology(ontology)
    index = build_function_index(retrieval_model, catalogue, factory=factory, ontology=ontology, precision=precision,
                                 progress=False)
    rows.append({"step": f"build-index (all live GO, {len(catalogue)} terms, {factory})",
                 "seconds": time.perf_counter() - start, "items/s": len(catalogue) / (time.perf_counter() - start)})
    with tempfile.TemporaryDirectory() as tmp:
        index.save(tmp)
        index_mb = sum(f.stat().st_size for f in Path(tmp).iterdir()) / 2**20
    records = read_fasta(Path(data) / "test_cafa3_benchmark" / "targets.fasta")
    start = time.perf_counter()
    references = [] if no_reference else ([Reference.load(f) for f in reference] or shipped_references())
    search = HomologySearch(references, SearchSettings(searcher=searcher),
                            protein_encoder=retrieval_model.protein_encoder) if references else None
    if search is not None:
        search.hits(records[:1])  # builds the search database if it is not cached yet
        seconds, proteins = time.perf_counter() - start, sum(len(r.ids) for r in references)
        rows.append({"step": f"load {len(references)} reference(s), {proteins} proteins (+ database if new)",
                     "seconds": seconds, "items/s": proteins / seconds})
    annotator = Annotator(retrieval_model, index, search)
    timer = StageTimer()
    timer.wrap(retrieval_model.protein_encoder, "encode", "protein tower")
    timer.wrap(index, "search", "FAISS recall")
    timer.wrap(index, "vectors", "FAISS recall")
    if search is not None:
        timer.wrap(search, "hits", f"{search.searcher} search")
    if annotator.selection.propagator is not None:
        timer.wrap(annotator.selection.propagator, "max_propagate_triples", "GO propagation")
    runs = []
    for _ in range(repeats):
        timer.seconds = {}
        start = time.perf_counter()
        table = annotator.annotate(records, AnnotateConfig(top=20, embedding_cache=embedding_cache,
                                                           precision=precision))
        runs.append((time.perf_counter() - start, timer.seconds))
    total, stages = sorted(runs, key=lambda run: run[0])[len(runs) // 2]  # the median run
    homology = f" + {search.searcher} search of {len(references)} reference(s)" if search else ""
    all_runs = f" (median of {repeats}: {', '.join(f'{t:.1f}' for t, _ in runs)} s)" if repeats > 1 else ""
    rows.append({"step": f"annotate {len(records)} CAFA3 targets, top 20{homology}{all_runs}",
                 "seconds": total, "items/s": len(records) / total})
    for stage, seconds in [*stages.items(), ("re-rank, features, output", total - sum(stages.values()))]:
        rows.append({"step": f"  {stage}", "seconds": seconds, "items/s": np.nan})
    rows.extend(approximate_recall(retrieval_model, index, records[:1000], k=300, precision=precision))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    click.echo(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.1f}"))
    click.echo(f"\npredictions: {len(table)}; index on disk: {index_mb:.0f} MB; peak memory (max RSS): {peak_mb:.0f} MB; "
               f"torch threads: {threads}")
    click.echo(machine_line(precision))


if __name__ == "__main__":
    main()
