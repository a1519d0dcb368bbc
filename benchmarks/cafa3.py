"""Score predictors on the CAFA3 benchmark (no-knowledge and limited-knowledge targets); prints a table.

    python benchmarks/cafa3.py [--data ../shared/data] [--predictions NAME=FILE ...]

Training data: train_goa2019exp_7sp minus proteins tagged cafa3_benchmark=1; IA from its
propagated labels. Predictors built in: naive. Any prediction file (CAFA or prot-retrieve TSV,
e.g. from `prot-retrieve annotate`) can be added with --predictions.
"""
from __future__ import annotations

import logging
from pathlib import Path

import click
import pandas as pd

from index.information import information_accretion
from index.labels import label_matrix
from index.ontology import Ontology
from index.propagation import Propagator
from retrieval.baselines import NaivePredictor
from retrieval.dataset import AnnotatedProteins
from retrieval.evaluation import Evaluator
from retrieval.io.fasta import read_fasta
from retrieval.io.tables import read_annotations, read_id_list, read_predictions

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=str(DEFAULT_DATA), show_default=True)
@click.option("--predictions", multiple=True, metavar="NAME=FILE", help="Extra prediction files to score.")
def main(data: str, predictions: tuple[str, ...]) -> None:
    logging.basicConfig(level=logging.WARNING)
    data = Path(data)
    bench = data / "test_cafa3_benchmark"
    onto = Ontology.from_obo(data / "go" / "go-basic_2021-12-15.obo.gz")
    prop = Propagator.from_ontology(onto)
    train = AnnotatedProteins.load(data / "train_goa2019exp_7sp" / "sequences.fasta.gz",
                                   data / "train_goa2019exp_7sp" / "annotations_leaf_exp.tsv.gz",
                                   {"cafa3_benchmark": "1"})
    labels, _ = label_matrix(onto, prop, train.annotations["protein"], train.annotations["term"])
    ia = information_accretion(labels, *onto.edges)
    targets = [r.id for r in read_fasta(bench / "targets.fasta")]
    runs = {"naive": NaivePredictor(onto, labels).predict(targets)}
    for spec in predictions:
        name, _, path = spec.partition("=")
        runs[name] = read_predictions(path)
    truth = read_annotations(bench / "ground_truth_isa_propagated.tsv")
    rows = []
    for split, ids_file in [("NK", "all_type1.txt"), ("LK", "all_type2.txt")]:
        evaluator = Evaluator(onto, truth, ia=ia, targets=read_id_list(bench / ids_file), propagator=prop)
        for name, table in runs.items():
            for r in evaluator.evaluate(table).itertuples():
                rows.append({"split": split, "method": name, "aspect": r.aspect, "n": r.n_truth,
                             "Fmax": r.fmax, "wFmax": r.wfmax, "Smin": r.smin})
    table = pd.DataFrame(rows).pivot_table(index=["split", "method"], columns="aspect",
                                           values=["Fmax", "wFmax", "Smin", "n"], sort=False)
    click.echo(table.to_string(float_format=lambda x: f"{x:.3f}"))


if __name__ == "__main__":
    main()
