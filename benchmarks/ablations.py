"""Ablations of the training recipe, each a short real training run; prints validation Fmax.

    python benchmarks/ablations.py [--data ../shared/data] [--epochs 1] [--output runs/ablations]

Variants (everything else as the default recipe):
  default        BCE + multi-positive InfoNCE, random + GO-sibling negatives, open-world mask, u*v
  bce-random     BCE only over the batch's positives + random terms (no InfoNCE, no siblings)
  no-product     the re-ranker without u*v (inputs [u, v, |u - v|] + pair features)
  go-context     the text tower also reads each GO term's parents' names (the GO graph as context)
Validation: held-out training proteins (the "val" split), Fmax per aspect of the towers alone and
after re-ranking, with the project's evaluator.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import click
import pandas as pd

from retrieval.models.retriever import RetrievalModel
from train.config import TrainConfig
from train.loop import train

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
VARIANTS = {
    "default": {},
    "bce-random": {"infonce_weight": 0.0, "sibling_negatives": 0},
    "no-product": {"reranker_product": False},
    "go-context": {"graph_context": True},
}


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=str(DEFAULT_DATA), show_default=True)
@click.option("--epochs", default=1, show_default=True)
@click.option("--output", default="runs/ablations", show_default=True)
@click.option("--only", multiple=True, help="Run only these variants.")
def main(data, epochs, output, only) -> None:
    logging.basicConfig(level=logging.WARNING)
    data = Path(data)
    base = TrainConfig(fasta=str(data / "train_goa2019exp_7sp" / "sequences.fasta.gz"),
                       annotations=str(data / "train_goa2019exp_7sp" / "annotations_leaf_exp.tsv.gz"),
                       obo=str(data / "go" / "go-basic_2021-12-15.obo.gz"), exclude_tag=("cafa3_benchmark=1",),
                       epochs=epochs, recall_k=300, seed=0)
    rows = []
    for name, changes in VARIANTS.items():
        if only and name not in only:
            continue
        config = dataclasses.replace(base, output=str(Path(output) / name), **changes)
        info = RetrievalModel.from_pretrained(train(config)).info
        for stage, key in (("towers", "val_fmax_towers"), ("re-ranked", "val_fmax_reranked")):
            rows.append({"variant": name, "stage": stage, **info["reranker"][key],
                         "minutes": info["minutes"]})
    click.echo(pd.DataFrame(rows).to_string(index=False, float_format=lambda x: f"{x:.3f}"))


if __name__ == "__main__":
    main()
