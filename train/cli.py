"""Training commands of ``prot-retrieve`` (``train``, ``train-reranker``, ``thresholds``).

:mod:`retrieval.cli` loads them by name when they run or ``--help`` lists them (see
``TRAINING_COMMANDS`` there), so the user's commands never import this package.
"""
from __future__ import annotations

import click

from retrieval.cli_options import dataclass_options, merge_options, pop_options
from retrieval.homology.settings import SearchSettings
from train.config import TrainConfig

#: The search the shipped homology re-ranker was trained with: every candidate aligned and identity
#: counted (--max-identity reads it); annotate's default is faster.
TRAINING_SEARCH = SearchSettings(sensitivity="more-sensitive", max_seqs=300, sensitivity_steps=1, max_rejected=0,
                                 max_accept=0, exact_identity=True)


@click.command(name="train")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), help="JSON file of training options (flags override it).")
@dataclass_options(TrainConfig)
def train_cmd(config_file, **options) -> None:
    """Train the two towers and the re-ranker; writes OUTPUT/model (a model folder)."""
    from train.loop import train

    config = TrainConfig.load(config_file) if config_file else TrainConfig()
    folder = train(merge_options(config, options))
    click.echo(f"model written to {folder}", err=True)


@click.command(name="train-reranker")
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False), required=True,
              help="Trained model whose towers are kept.")
@click.option("--reference", type=click.Path(exists=True, file_okay=False), required=True, multiple=True,
              help="Reference folder (build-reference) holding the model's training proteins. Repeatable: "
                   "each adds its own block of features; annotate must be given them in the same order.")
@click.option("-o", "--output", required=True, help="Run folder; the new model goes to OUTPUT/model.")
@click.option("--epochs", type=click.IntRange(min=1), help="Re-ranker epochs (default: as recorded in the model).")
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False),
              help="Folder of the model's training data, when its recorded paths do not lead there from here "
                   "(e.g. ../shared/data).")
@dataclass_options(SearchSettings, only=("searcher", "sensitivity"), base=TRAINING_SEARCH)
@click.option("--search-tool", help="Path of the search tool's executable (default: found as --search says).")
@click.option("--max-identity", type=float, default=100.0, show_default=True,
              help="Drop hits above this percent identity for the training queries (besides self-hits).")
@click.option("--source-dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Chance that a training query loses one reference's hits (robust to a missing reference).")
@click.option("--taxon-dropout", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Chance that a training query's taxon is hidden (robust to FASTA without taxon tags).")
@click.option("--unseen-share", type=click.FloatRange(0, 1, max_open=True), default=0.0, show_default=True,
              help="Share of terms drawn as roots of simulated unseen subtrees: for the training queries they are "
                   "scored by text alone with no reference labels, as a term never trained on is served.")
def train_reranker_cmd(model_dir, reference, output, epochs, data_dir, search_tool, max_identity, source_dropout,
                       taxon_dropout, unseen_share, **options) -> None:
    """Retrain only the fusion re-ranker, adding homology transfer features (the hybrid model)."""
    from train.loop import retrain_reranker
    from train.rerank import HomologyTraining

    settings = merge_options(TRAINING_SEARCH, pop_options(SearchSettings, options))
    folder = retrain_reranker(model_dir, list(reference), output, search_tool, epochs,
                              HomologyTraining(max_identity, source_dropout, taxon_dropout, unseen_share), settings,
                              data_dir)
    click.echo(f"model written to {folder}", err=True)


@click.command(name="thresholds")
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False), required=True,
              help="Model folder whose manifest receives the thresholds (its weights are unchanged).")
@click.option("--reference", type=click.Path(exists=True, file_okay=False), multiple=True,
              help="References the model's homology re-ranker reads (default: the shipped ones).")
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False),
              help="Folder of the model's training data, when its recorded paths do not lead there from here "
                   "(e.g. ../shared/data).")
@dataclass_options(SearchSettings, only=("searcher",))
def thresholds_cmd(model_dir, reference, data_dir, **options) -> None:
    """Fit per-aspect score thresholds for precisions 0.5 ... 0.95 on the model's validation proteins
    (annotate --min-precision reads them)."""
    from train.thresholds import fit_thresholds

    settings = merge_options(SearchSettings(), pop_options(SearchSettings, options))
    record = fit_thresholds(model_dir, list(reference) or "default", settings, data_dir)
    for aspect, levels in record["precision"].items():
        click.echo(f"{aspect}: " + ", ".join(f"precision {p}: score >= {t}" for p, t in levels.items()))
