"""Training commands of ``prot-retrieve`` (``train``, ``train-reranker``, ``thresholds``).

:mod:`retrieval.cli` loads them by name when they run or ``--help`` lists them (see
``TRAINING_COMMANDS`` there), so the user's commands never import this package.
"""
from __future__ import annotations

import click

from retrieval.cli_options import dataclass_options, merge_options, pop_options
from retrieval.homology.settings import SearchSettings
from index.errors import InputError
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


@click.command(name="refresh")
@click.option("--obo", type=click.Path(exists=True, dir_okay=False),
              help="The GO release (go-basic.obo, plain or .gz): the function index covers its live terms.")
@click.option("--sequences", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A reference's proteins: a UniProt flat file (uniprot_sprot.dat.gz, annotations included) or a "
                   "FASTA, which takes the next --annotations. Repeat for a second reference.")
@click.option("--annotations", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="The annotations of each FASTA given with --sequences, in order: GAF 2.x, GPAD or this project's "
                   "TSV.")
@click.option("--evidence", type=click.Choice(["experimental", "curated", "all"]), default="experimental",
              show_default=True, help="Evidence codes kept in the references (docs/usage.md#keeping-predictions-current).")
@click.option("--taxon", "taxa", multiple=True, help="Keep only proteins of this NCBI taxon (repeatable).")
@click.option("--exclude-tag", multiple=True, metavar="KEY=VALUE", help="Drop proteins with this FASTA tag.")
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False),
              help="Model whose towers are kept (default: the shipped model).")
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False),
              help="Folder of the model's training data, when its recorded paths do not lead there from here.")
@click.option("--epochs", type=click.IntRange(min=1), help="Re-ranker epochs (default: as recorded in the model).")
@dataclass_options(SearchSettings, only=("searcher", "sensitivity"), base=TRAINING_SEARCH)
@click.option("--download", "download_dir", type=click.Path(file_okay=False),
              help="Fetch the current go-basic.obo and uniprot_sprot.dat.gz into this folder first (needs internet) and "
                   "use them where --obo and --sequences are not given.")
@click.option("--release-url", help="With --download: fetch from this address (a mirror holding the same files).")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="The pipeline folder to write.")
@click.option("--overwrite", is_flag=True, help="Replace -o even when it holds files prot-retrieve did not write.")
def refresh_cmd(obo, sequences, annotations, evidence, taxa, exclude_tag, model_dir, data_dir, epochs, download_dir,
                release_url, output, overwrite, **options) -> None:
    """Build a complete pipeline from release files: the function index of a GO release, references
    from UniProt / GOA files, the homology re-ranker retrained on them and its thresholds fitted;
    then `annotate --pipeline OUTPUT`."""
    from retrieval.dataset import parse_tag_filters
    from retrieval.io.annotations import AnnotationFilter, annotation_format
    from train.refresh import ReferenceSource, refresh

    if download_dir:
        from train.release import download_release

        fetched = download_release(download_dir, release_url)
        obo, sequences = obo or str(fetched["go-basic.obo"]), sequences or (str(fetched["uniprot_sprot.dat.gz"]),)
    if not obo or not sequences:
        raise InputError("refresh needs --obo and --sequences (or --download to fetch the current ones)")
    keep, exclude, pending = AnnotationFilter(evidence, taxa), parse_tag_filters(exclude_tag), list(annotations)
    sources = []
    for path in sequences:
        paired = None if annotation_format(path) == "dat" else (pending.pop(0) if pending else None)
        sources.append(ReferenceSource(path, paired, keep=keep, exclude_tags=exclude))
    if pending:
        raise InputError(f"--annotations {pending[0]}: no FASTA --sequences left to pair it with")
    settings = merge_options(TRAINING_SEARCH, pop_options(SearchSettings, options))
    folder = refresh(obo, sources, output, model_dir, data_dir, settings, epochs, overwrite)
    click.echo(f"pipeline written to {folder}: prot-retrieve annotate --pipeline {folder} ...", err=True)
