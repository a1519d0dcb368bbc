"""How far to trust the scores on CAFA3 no-knowledge targets: the precision that ``--min-precision``
actually gives, and pictures (precision-recall curves per aspect, a reliability diagram).

    python benchmarks/trust.py [--data ../shared/data] [--model DIR] [--search auto|mmseqs|diamond]
                               [--plots docs/img]

The hybrid (the model, by default the shipped one, with the shipped references) annotates every
CAFA3 target; for each level fitted by ``prot-retrieve thresholds`` the table gives, per aspect, the
threshold and the protein-centric precision, recall and coverage measured at it on NK targets.
With ``--plots`` it writes ``pr_curves.png`` (hybrid against MMseqs2 kNN on each shipped reference
and the naive prior) and ``reliability.png`` (the hybrid's propagated scores against the truth).
"""
from __future__ import annotations

import logging
from pathlib import Path

import click
import numpy as np
import pandas as pd

from cafa3 import DEFAULT_DATA, cafa3_setting, with_cafa_taxa  # the sibling script


def precision_table(evaluator, table: pd.DataFrame, thresholds: dict) -> pd.DataFrame:
    """Measured precision/recall/coverage at each fitted threshold (the nearest 0.01 grid point)."""
    curves = evaluator.curves(table)
    rows = []
    for aspect, levels in thresholds.items():
        curve = curves[curves["aspect"] == aspect]
        for level, threshold in levels.items():
            at = curve.iloc[int(np.argmin(np.abs(curve["threshold"].to_numpy() - threshold)))]
            rows.append({"aspect": aspect, "min-precision": level, "threshold": threshold,
                         "CAFA3 NK precision": at["precision"], "recall": at["recall"], "coverage": at["coverage"]})
    return pd.DataFrame(rows)


def plot(curves: dict[str, pd.DataFrame], reliability: pd.DataFrame, out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("--plots needs matplotlib (pip install matplotlib)") from None
    out.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2), sharey=True)
    for ax, aspect in zip(axes, ("MFO", "BPO", "CCO")):
        for method, table in curves.items():
            c = table[(table["aspect"] == aspect) & (table["coverage"] > 0)]
            ax.plot(c["recall"], c["precision"], label=method, lw=2 if method.startswith("hybrid") else 1.2)
        ax.set(title=f"{aspect}, CAFA3 no-knowledge", xlabel="recall", xlim=(0, 1), ylim=(0, 1))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("precision")
    axes[0].legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "pr_curves.png", dpi=110)
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    for aspect, part in reliability.groupby("aspect", sort=False):
        ax.plot(part["mean_score"], part["observed"], marker="o", label=aspect)
    ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="calibrated")
    ax.set(title="Reliability, hybrid, CAFA3 NK", xlabel="predicted probability (propagated)",
           ylabel="share of true (protein, term) pairs", xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "reliability.png", dpi=110)


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=str(DEFAULT_DATA), show_default=True)
@click.option("--model", type=click.Path(exists=True, file_okay=False), help="Model folder (default: shipped).")
@click.option("--search", "searcher", default="auto", show_default=True)
@click.option("--plots", type=click.Path(file_okay=False), help="Write the PNGs into this folder.")
def main(data, model, searcher, plots) -> None:
    from retrieval.annotate import Annotator
    from retrieval.baselines import NaivePredictor, knn_transfer
    from retrieval.homology import SearchSettings, Transfer

    logging.basicConfig(level=logging.WARNING)
    setting = cafa3_setting(Path(data))
    records = with_cafa_taxa(setting.records)
    annotator = Annotator.from_pretrained(model, settings=SearchSettings(searcher=searcher))
    table = annotator.annotate(records, top=1500, min_score=0.01).rename(
        columns={"protein_id": "protein", "term_id": "term"})
    evaluator = setting.nk
    thresholds = annotator.model.info.get("thresholds", {}).get("precision", {})
    if thresholds:
        click.echo(precision_table(evaluator, table, thresholds).to_string(index=False, float_format="%.3f"))
    if plots:
        ids = [r.id for r in records]
        curves = {"hybrid": evaluator.curves(table),
                  "naive": evaluator.curves(NaivePredictor(setting.ontology, setting.labels).predict(ids))}
        search = annotator.homology
        for reference, hits in zip(search.references, search.hits(records)):
            transferred = knn_transfer(Transfer.from_hits(reference, hits, ids), reference, ids)
            curves[f"{search.searcher} kNN, {reference.folder.name}"] = evaluator.curves(transferred)
        plot(curves, evaluator.reliability(table), Path(plots))
        click.echo(f"pictures -> {plots}/pr_curves.png, {plots}/reliability.png")


if __name__ == "__main__":
    main()
