"""Would a post-hoc recalibration help? Isotonic regression per aspect (Obozinski et al. 2008 found
it best for reconciling GO predictions), fitted on the model's validation proteins, judged on CAFA3.

    python benchmarks/calibration.py [--data ../shared/data] [--model DIR]

Fits, per aspect, an isotonic map from the hybrid's propagated scores to the share of true pairs on
the validation proteins (self-hits hidden, as ``prot-retrieve thresholds`` does), applies it to the
CAFA3 predictions (a monotone map per aspect commutes with GO max-propagation) and prints Fmax and
ECE on NK and LK targets, raw against recalibrated. The shipped model adopts it only if ECE falls
without Fmax falling.
"""
from __future__ import annotations

import logging
from pathlib import Path

import click
import numpy as np
import pandas as pd
from scipy.optimize import isotonic_regression

from cafa3 import DEFAULT_DATA, cafa3_setting, with_cafa_taxa  # the sibling script


def isotonic_maps(pairs: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per aspect, the breakpoints (score, calibrated) of the isotonic fit of truth on score."""
    maps = {}
    for aspect, (scores, truth) in pairs.items():
        order = np.argsort(scores, kind="stable")
        fitted = isotonic_regression(truth[order].astype(np.float64)).x
        maps[aspect] = (scores[order], fitted)
    return maps


def recalibrated(table: pd.DataFrame, maps, aspects: pd.Series) -> pd.DataFrame:
    out = table.copy()
    for aspect, (x, y) in maps.items():
        rows = aspects.to_numpy() == aspect
        out.loc[rows, "score"] = np.clip(np.interp(out.loc[rows, "score"].to_numpy(), x, y), 0.0, 1.0)
    return out


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=str(DEFAULT_DATA), show_default=True)
@click.option("--model", type=click.Path(exists=True, file_okay=False), help="Model folder (default: shipped).")
def main(data, model) -> None:
    from retrieval.annotate import Annotator
    from retrieval.models.retriever import DEFAULT_MODEL
    from train.thresholds import validation_predictions

    logging.basicConfig(level=logging.WARNING)
    model = model or str(DEFAULT_MODEL)
    val, val_evaluator, _ = validation_predictions(model)
    maps = isotonic_maps(val_evaluator.scored_pairs(val))
    setting = cafa3_setting(Path(data))
    annotator = Annotator.from_pretrained(model)
    raw = annotator.annotate(with_cafa_taxa(setting.records), top=1500, min_score=0.01)
    aspects = raw["aspect"]
    raw = raw.rename(columns={"protein_id": "protein", "term_id": "term"})[["protein", "term", "score"]]
    calibrated = recalibrated(raw, maps, aspects)
    rows = []
    for split, evaluator in (("NK", setting.nk), ("LK", setting.lk)):
        for name, table in (("raw", raw), ("isotonic", calibrated)):
            for r in evaluator.evaluate(table).itertuples():
                rows.append({"split": split, "scores": name, "aspect": r.aspect, "Fmax": r.fmax, "ECE": r.ece})
    wide = pd.DataFrame(rows).pivot_table(index=["split", "scores"], columns="aspect", values=["Fmax", "ECE"],
                                          sort=False)
    click.echo(wide.reindex(columns=[(m, a) for m in ("Fmax", "ECE") for a in ("MFO", "BPO", "CCO")])
               .to_string(float_format=lambda x: f"{x:.3f}"))


if __name__ == "__main__":
    main()
