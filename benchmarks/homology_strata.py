"""Fmax on CAFA3 no-knowledge targets by how close their nearest annotated homolog is.

    python benchmarks/homology_strata.py [--data ../shared/data] [--model DIR] [--reference DIR ...]
                                         [--search auto|mmseqs|diamond] [--predictions NAME=FILE ...]

Per aspect, each NK target with truth in that aspect falls in one stratum: the best identity of its
search hits (over every reference; the shipped ones unless --reference) among reference proteins
annotated in the aspect: >= 60 %, 30-60 %, < 30 %, or no such hit. Prints Fmax per stratum for the hybrid (--model with every
--reference; default the shipped model), kNN on each reference and any --predictions file.
Shows where accuracy is lost, and how much homology a target needs.
"""
from __future__ import annotations

import logging
from pathlib import Path

import click
import numpy as np
import pandas as pd

from index.ontology import Ontology
from index.propagation import Propagator
from retrieval.baselines import knn_transfer
from retrieval.evaluation import Evaluator
from retrieval.homology.settings import SEARCHERS
from retrieval.homology import HomologySearch, Reference, SearchSettings, Transfer
from retrieval.homology.shipped import shipped_references
from retrieval.io.fasta import read_fasta
from retrieval.io.tables import read_annotations, read_id_list, read_predictions

from cafa3 import DEFAULT_DATA, annotate_all, with_cafa_taxa  # the sibling script

STRATA = (("identity >= 60 %", 60.0, np.inf), ("30-60 %", 30.0, 60.0), ("< 30 %", 0.0, 30.0))


def best_identity_per_aspect(reference: Reference, hits: pd.DataFrame) -> pd.DataFrame:
    """(query x aspect) best identity among the hits annotated in the aspect; NaN without such a hit."""
    _, in_aspect, _ = reference.aspect_labels
    rows = pd.Index(reference.ids).get_indexer(hits["target"].to_numpy())
    annotated = in_aspect[rows].toarray().astype(bool)
    aspects = pd.unique(reference.aspects)
    identity = pd.DataFrame(np.where(annotated, hits["identity"].to_numpy()[:, None], np.nan), columns=aspects)
    return identity.groupby(hits["query"].to_numpy()).max()


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=str(DEFAULT_DATA), show_default=True)
@click.option("--model", type=click.Path(exists=True, file_okay=False), help="Hybrid model (default: shipped).")
@click.option("--reference", type=click.Path(exists=True, file_okay=False), multiple=True,
              help="build-reference folder, in the model's training order. Repeatable (default: the shipped ones).")
@click.option("--search", "searcher", type=click.Choice(SEARCHERS), default="auto", show_default=True)
@click.option("--predictions", multiple=True, metavar="NAME=FILE", help="Extra CAFA3 prediction files to score.")
def main(data, model, reference, searcher, predictions) -> None:
    logging.basicConfig(level=logging.WARNING)
    data = Path(data)
    bench = data / "test_cafa3_benchmark"
    onto = Ontology.from_obo(data / "go" / "go-basic_2021-12-15.obo.gz")
    prop = Propagator.from_ontology(onto)
    truth = read_annotations(bench / "ground_truth_isa_propagated.tsv")
    targets = set(read_id_list(bench / "all_type1.txt"))
    records = [r for r in with_cafa_taxa(read_fasta(bench / "targets.fasta")) if r.id in targets]
    ids = [r.id for r in records]
    runs, identities = {}, []
    refs = [Reference.load(f) for f in reference] or shipped_references()
    search = HomologySearch(refs, SearchSettings(searcher=searcher))
    for ref, hits in zip(refs, search.hits(records)):
        identities.append(best_identity_per_aspect(ref, hits))
        runs[f"{search.searcher} kNN ({Path(ref.folder).name})"] = knn_transfer(Transfer.from_hits(ref, hits, ids), ref, ids)
    runs["hybrid"] = annotate_all(model, records, reference or "default", searcher)
    runs.update({n: read_predictions(p) for n, p in (s.split("=", 1) for s in predictions)})
    best = pd.concat(identities).groupby(level=0).max().reindex(ids)
    rows = []
    for aspect in ("MFO", "BPO", "CCO"):
        with_truth = set(truth.loc[truth["aspect"] == aspect, "protein"]) & targets
        column = best[aspect] if aspect in best else pd.Series(np.nan, index=best.index)
        strata = [(name, column[(column >= low) & (column < high)].index) for name, low, high in STRATA]
        strata.append(("no hit in the aspect", column[column.isna()].index))
        for name, members in strata:
            members = sorted(set(members) & with_truth)
            if not members:
                continue
            evaluator = Evaluator(onto, truth, targets=members, propagator=prop)
            for method, table in runs.items():
                result = evaluator.evaluate(table).set_index("aspect").loc[aspect]
                rows.append({"aspect": aspect, "stratum": name, "proteins": len(members), "method": method,
                             "Fmax": result["fmax"]})
    table = pd.DataFrame(rows).pivot_table(index=["aspect", "stratum", "proteins"], columns="method",
                                           values="Fmax", sort=False)
    click.echo(table.to_string(float_format=lambda x: f"{x:.3f}"))


if __name__ == "__main__":
    main()
