"""The ``prot-retrieve`` command line (the console-script entry point): it parses options and calls
library functions, nothing more.

The training commands (``train``, ``train-reranker``, ``thresholds``) live in :mod:`train.cli` and
are loaded only when one of them runs or ``--help`` lists them, so ``annotate`` never imports the
training package.
"""
from __future__ import annotations

import functools
import json
import logging
import signal
import sys
import time

import click

from index.errors import InputError, RunFailed
from retrieval.cli_options import dataclass_options, merge_options, pop_options
from retrieval.config import PRECISIONS
from retrieval.homology.settings import SearchSettings
from retrieval.web.config import ServeConfig

LOG = logging.getLogger("retrieval")

_existing = click.Path(exists=True, dir_okay=False)
_overwrite_option = click.option(
    "--overwrite", is_flag=True, help="Replace the -o folder even when it holds files prot-retrieve did not write "
                                      "(refused otherwise; a folder this command wrote before is always replaced).")
_precision_option = click.option(
    "--precision", type=click.Choice(PRECISIONS), default="auto", show_default=True,
    help="Arithmetic of the towers and the re-ranker; auto: bf16 where the processor computes it natively and "
         "faster (AVX-512 BF16, AMX, bf16 GPUs), else int8 for the protein tower's convolutions where that "
         "measures faster on the CPU, else fp32 (-v says which).")


class _InputFailure(click.ClickException):
    exit_code = 2


#: Commands of the training package, loaded by name when needed (module:attribute).
TRAINING_COMMANDS = {"train": "train.cli:train_cmd", "train-reranker": "train.cli:train_reranker_cmd",
                     "thresholds": "train.cli:thresholds_cmd", "refresh": "train.cli:refresh_cmd"}


class _Group(click.Group):
    """Turns :class:`InputError` into a one-line ``Error: ...`` and exit code 2 (:class:`RunFailed`: exit
    code 1), never a traceback; adds the training commands when they are asked for."""

    def list_commands(self, ctx):
        return sorted([*super().list_commands(ctx), *TRAINING_COMMANDS])

    def format_commands(self, ctx, formatter):
        """The user's commands, then the training commands, each under its own heading."""
        for title, names in (("Commands", [n for n in self.list_commands(ctx) if n not in TRAINING_COMMANDS]),
                             ("Training commands", sorted(TRAINING_COMMANDS))):
            rows = [(n, self.get_command(ctx, n).get_short_help_str(formatter.width - 6 - max(map(len, names))))
                    for n in names]
            with formatter.section(title):
                formatter.write_dl(rows)

    def get_command(self, ctx, name):
        if name in TRAINING_COMMANDS and name not in self.commands:
            import importlib

            module, attribute = TRAINING_COMMANDS[name].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        signal.signal(signal.SIGTERM, _terminate)  # unwind like Ctrl-C, so temporary files are removed
        try:
            return super().invoke(ctx)
        except InputError as err:
            raise _InputFailure(str(err)) from None
        except RunFailed as err:
            raise click.ClickException(str(err)) from None
        except OSError as err:  # the environment (a full disk, no permission, a file where a folder is)
            raise _InputFailure(_os_message(err)) from None
        except Exception as err:  # noqa: BLE001 - a damaged file that a loader did not name
            if not _is_unreadable_file(err):
                raise
            raise _InputFailure(f"a file is damaged or not what it should be ({type(err).__name__}: "
                                f"{str(err).splitlines()[0][:200] if str(err) else 'no detail'})") from None
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)
        except _Terminated:
            click.echo("Terminated.", err=True)
            sys.exit(143)


def _os_message(err: OSError) -> str:
    where = " -> ".join(str(f) for f in (err.filename, err.filename2) if f is not None)
    return f"{where}: {err.strerror or err}" if where else f"{err.strerror or err}"


def _is_unreadable_file(err: Exception) -> bool:
    """Errors of reading a damaged archive or weights file (a truncated .npz, .safetensors, JSON)."""
    import json
    import zipfile

    return isinstance(err, (zipfile.BadZipFile, EOFError, json.JSONDecodeError, UnicodeDecodeError)) \
        or type(err).__name__ == "SafetensorError"


class _Terminated(BaseException):
    """SIGTERM, raised where the program is, so every ``finally`` and cleanup runs."""


def _terminate(signum, frame):
    raise _Terminated()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v info, -vv debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.version_option(package_name="prot-retrieve")
def main(verbose: int, quiet: bool) -> None:
    """Predict Gene Ontology functions of proteins by retrieval and re-ranking."""
    level = logging.ERROR if quiet else [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")


@main.command()
@click.argument("obo", type=_existing)
@click.option("-o", "--output", default="-", show_default=True, help="functions.tsv to write ('-': stdout).")
def catalogue(obo: str, output: str) -> None:
    """Turn an OBO ontology into a function catalogue (term_id, name, description, aspect)."""
    from index.catalogue import FunctionCatalogue
    from index.ontology import Ontology
    from retrieval.io.writers import atomic_output

    cat = FunctionCatalogue.from_ontology(Ontology.from_obo(obo))
    with atomic_output(output, (obo,)) as fh:
        cat.write(fh)
    click.echo(f"{len(cat)} live terms written to {output}", err=True)


@main.command()
@click.argument("annotations", type=_existing)
@click.option("--obo", type=_existing, required=True, help="Ontology to propagate over.")
@click.option("-o", "--output", default="-", show_default=True, help="IA file to write (term<TAB>ia).")
def ia(annotations: str, obo: str, output: str) -> None:
    """Information accretion of each term from an annotation table (weights for wFmax and Smin)."""
    from index.information import information_accretion_table
    from index.ontology import Ontology
    from retrieval.io.tables import read_annotations
    from retrieval.io.writers import atomic_output

    table = read_annotations(annotations)
    ia_table = information_accretion_table(Ontology.from_obo(obo), table["protein"], table["term"])
    with atomic_output(output, (annotations, obo)) as fh:
        ia_table.to_csv(fh, sep="\t", header=False, index=False, float_format="%.6g")


@main.command()
@click.argument("fasta", type=_existing)
@click.option("--train-fasta", type=_existing, required=True, help="Training sequences (defines the proteins).")
@click.option("--train-annotations", type=_existing, required=True, help="Training annotations (EntryID term aspect).")
@click.option("--obo", type=_existing, required=True, help="Ontology to propagate training labels over.")
@click.option("--exclude-tag", multiple=True, metavar="KEY=VALUE",
              help="Drop training proteins whose header has this tag (e.g. cafa3_benchmark=1). Repeatable.")
@click.option("--format", "fmt", type=click.Choice(["tsv", "cafa"]), default="tsv", show_default=True)
@click.option("-o", "--output", default="-", show_default=True, help="Predictions file ('-': stdout).")
@click.option("--skip-invalid", is_flag=True, help="Skip (and count) bad FASTA records instead of failing.")
def naive(fasta, train_fasta, train_annotations, obo, exclude_tag, fmt, output, skip_invalid) -> None:
    """Naive baseline: predict each term with its training frequency, for every protein of FASTA."""
    from retrieval.baselines import naive_baseline
    from retrieval.dataset import parse_tag_filters
    from retrieval.io.fasta import read_fasta
    from retrieval.io.writers import PredictionWriter, atomic_output

    targets = [r.id for r in read_fasta(fasta, skip_invalid=skip_invalid)]
    predictions = naive_baseline(targets, train_fasta, train_annotations, obo, parse_tag_filters(exclude_tag))
    with atomic_output(output, (fasta, train_fasta, train_annotations)) as fh:
        writer = PredictionWriter(fh, fmt)
        writer.write(predictions)
        writer.close()


@main.command()
@click.argument("predictions", type=_existing)
@click.option("--truth", type=_existing, required=True, help="Truth annotations (EntryID term [aspect]).")
@click.option("--obo", type=_existing, required=True, help="Ontology (propagation over is_a + part_of).")
@click.option("--ia", "ia_file", type=_existing, help="Information accretion file: adds weighted Fmax and Smin.")
@click.option("--targets", type=_existing, help="File of protein ids: evaluate only these.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), help="Also write the results as JSON.")
def evaluate(predictions, truth, obo, ia_file, targets, json_out) -> None:
    """CAFA protein-centric evaluation (Fmax, wFmax, Smin, AUPR per aspect) of a prediction file."""
    from retrieval.evaluation import evaluate_files
    from retrieval.io.writers import atomic_output

    start = time.perf_counter()
    table = evaluate_files(predictions, truth, obo, ia=ia_file, targets=targets)
    click.echo(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    click.echo(f"evaluated in {time.perf_counter() - start:.1f} s", err=True)
    if json_out:
        with atomic_output(json_out, tuple(f for f in (predictions, truth, obo, ia_file, targets) if f)) as fh:
            json.dump({"predictions": predictions, "truth": truth, "obo": obo, "ia": ia_file, "targets": targets,
                       "results": table.to_dict(orient="records")}, fh, indent=2)




@main.command(name="build-index")
@click.argument("functions", type=_existing)
@click.option("-o", "--output", type=click.Path(file_okay=False), default="function_index", show_default=True,
              help="Index folder to write.")
@click.option("--model", type=click.Path(exists=True, file_okay=False), help="Model folder (default: the shipped model).")
@click.option("--factory", default="Flat", show_default=True,
              help="FAISS factory string: Flat (exact), HNSW32, IVF1024,Flat ... (approximate, for millions).")
@click.option("--obo", type=_existing, help="Ontology for GO-consistent scores (default: the shipped GO when ids are GO).")
@_precision_option
@_overwrite_option
def build_index(functions, output, model, factory, obo, precision, overwrite) -> None:
    """Embed a function catalogue (functions.tsv) with the text tower into a FAISS index folder."""
    from index.catalogue import FunctionCatalogue
    from retrieval.indexing import build_function_index, catalogue_ontology
    from retrieval.models.retriever import RetrievalModel

    catalogue = FunctionCatalogue.from_tsv(functions)
    start = time.perf_counter()
    index = build_function_index(RetrievalModel.from_pretrained(model), catalogue, factory,
                                 catalogue_ontology(catalogue, obo), precision)
    index.save(output, overwrite)
    click.echo(f"{len(catalogue)} functions indexed in {time.perf_counter() - start:.0f} s -> {output}", err=True)


@main.command()
@click.argument("index_dir", metavar="INDEX", type=click.Path())
@click.argument("query", nargs=-1)
@click.option("--queries", type=_existing, help="File of queries, one per line (besides any QUERY given).")
@click.option("--top", type=int, default=50, show_default=True, help="Proteins per query.")
@click.option("--format", "fmt", type=click.Choice(["tsv", "jsonl"]), default="tsv", show_default=True)
@click.option("-o", "--output", default="-", show_default=True, help="File to write ('-': stdout).")
@click.option("--model", type=click.Path(exists=True, file_okay=False), help="Model folder (default: the shipped model).")
@_precision_option
def search(index_dir, query, queries, top, fmt, output, model, precision) -> None:
    """Rank the proteins of a protein index (build-protein-index) for functions written in words,
    e.g. `prot-retrieve search proteome_index "binds heme and carries oxygen"`."""
    from retrieval.io.writers import atomic_output
    from retrieval.models.retriever import RetrievalModel
    from retrieval.protein_index import ProteinIndex, read_queries

    texts = list(query) + (read_queries(queries) if queries else [])
    retrieval_model = RetrievalModel.from_pretrained(model)
    hits = ProteinIndex.load(index_dir, retrieval_model).search(retrieval_model, texts, top, precision=precision)
    with atomic_output(output, (queries,) if queries else ()) as fh:
        if fmt == "tsv":
            hits.to_csv(fh, sep="\t", index=False, float_format="%.6f")
        else:
            hits.to_json(fh, orient="records", lines=True, double_precision=6)


def _references(reference: tuple[str, ...], no_reference: bool):
    """What --reference and --no-reference ask ``Annotator.from_pretrained`` for."""
    if no_reference and reference:
        raise InputError("--no-reference and --reference exclude each other")
    return None if no_reference else (list(reference) or "default")


def _search_options(func):
    """The search options, generated from :class:`SearchSettings`, handed to the command as one
    ``settings``, and --search-tool."""

    @functools.wraps(func)
    def command(**kwargs):
        return func(settings=merge_options(SearchSettings(), pop_options(SearchSettings, kwargs)), **kwargs)

    command = dataclass_options(SearchSettings)(command)
    return click.option("--search-tool", help="Path of the search tool's executable (default: found as --search "
                                              "says).")(command)


@main.command(name="build-protein-index")
@click.argument("fasta", type=_existing)
@click.option("-o", "--output", type=click.Path(file_okay=False), required=True, help="Protein index folder to write.")
@click.option("--model", type=click.Path(exists=True, file_okay=False), help="Model folder (default: the shipped model).")
@click.option("--factory", default="Flat", show_default=True,
              help="FAISS factory string: Flat (exact), HNSW32 (approximate, for millions of proteins).")
@_precision_option
@click.option("--skip-invalid", is_flag=True, help="Skip (and count) bad FASTA records instead of failing.")
@click.option("--reference", type=click.Path(exists=True, file_okay=False), multiple=True,
              help="Homology reference folder, replacing the shipped references (repeatable, in the model's order): "
                   "each protein's homology profile is kept, so that searches borrow from GO terms.")
@click.option("--no-reference", is_flag=True, help="No homology profile: searches score by the two towers alone "
                                                   "(the build is then as fast as embedding).")
@click.option("--force", is_flag=True, help="Use --reference folders other than those the model's homology "
                                            "re-ranker was trained with (refused otherwise).")
@_overwrite_option
@_search_options
def build_protein_index(fasta, output, model, factory, precision, skip_invalid, reference, no_reference, force,
                        overwrite, settings, search_tool) -> None:
    """Embed a proteome with the protein tower into a FAISS folder that `search` ranks by text; with
    homology (the default), also keep each protein's homology profile (as long as annotating)."""
    from retrieval.annotate import Annotator
    from retrieval.io.fasta import read_fasta
    from retrieval.protein_index import ProteinIndex

    records = read_fasta(fasta, skip_invalid=skip_invalid)
    start = time.perf_counter()
    annotator = Annotator.from_pretrained(model, None, _references(reference, no_reference), search_tool, settings,
                                          force)
    homology = annotator if annotator.reranking.homology else None
    if homology is None and not no_reference:
        LOG.warning("no homology re-ranker and references: searches will score by the two towers alone")
    ProteinIndex.build(annotator.model, records, factory, precision, annotator=homology).save(output, overwrite)
    click.echo(f"{len(records)} proteins indexed in {time.perf_counter() - start:.0f} s -> {output}", err=True)


def _annotate_command():
    from retrieval.config import ENGINES, OUTPUT_FORMATS, AnnotateConfig, RayConfig

    @main.command(name="annotate")
    @click.argument("fasta", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
    @click.option("--model", type=click.Path(exists=True, file_okay=False), help="Model folder (default: shipped model).")
    @click.option("--index", "index_dir", type=click.Path(exists=True, file_okay=False),
                  help="Index folder from build-index (default: all live GO, built on first use and cached).")
    @click.option("--pipeline", type=click.Path(exists=True, file_okay=False),
                  help="A pipeline folder from `prot-retrieve refresh`: its model, index and references (instead of "
                       "--model, --index and --reference).")
    @click.option("--format", "fmt", type=click.Choice(OUTPUT_FORMATS), default="tsv", show_default=True)
    @click.option("-o", "--output", default="-", show_default=True, help="Output file ('-': stdout).")
    @click.option("--skip-invalid", is_flag=True, help="Skip (and count) bad FASTA records instead of failing.")
    @click.option("--resume", is_flag=True, help="Continue an interrupted run with the same input, model and options "
                                                 "(its finished blocks are kept in OUTPUT.partial/).")
    @click.option("--restart", is_flag=True, help="Discard an interrupted run's progress (OUTPUT.partial/) and start "
                                                  "again.")
    @click.option("--db", default="", help="GAF DB column (e.g. FlyBase) for proteins whose header is not UniProt's "
                                          "(>sp|ACC|NAME gives UniProtKB).")
    @click.option("--reference", type=click.Path(exists=True, file_okay=False), multiple=True,
                  help="Homology reference folder (build-reference), replacing the shipped references. Repeatable, "
                       "in the order the model's homology re-ranker was trained with.")
    @click.option("--no-reference", is_flag=True, help="No homology: the two towers alone (fast, far less accurate).")
    @click.option("--force", is_flag=True, help="Use --reference folders other than those the model's homology "
                                                "re-ranker was trained with (refused otherwise).")
    @_search_options
    @click.option("--engine", type=click.Choice(ENGINES), default="local", show_default=True,
                  help="local: this process; ray: Ray Data actors on this machine or a cluster (--address; "
                       "pip install prot-retrieve[ray]).")
    @dataclass_options(RayConfig)
    @dataclass_options(AnnotateConfig)
    def annotate_cmd(fasta, model, index_dir, pipeline, fmt, output, skip_invalid, resume, restart, db, reference,
                     no_reference, force, settings, search_tool, engine, **options) -> None:
        """Predict GO functions for every protein of FASTA ('-': standard input): top N per protein with
        probabilities.

        By default the shipped model scores with the two homology references shipped with it
        (searched with MMseqs2, or DIAMOND when asked for); the first run builds the search database
        in the cache.
        """
        from tqdm.auto import tqdm

        from retrieval.annotate import Annotator
        from retrieval.runners.local import annotate_file

        ray_config = merge_options(RayConfig(), pop_options(RayConfig, options))
        config = merge_options(AnnotateConfig(), options)
        config.check()
        if resume and restart:
            raise InputError("--resume and --restart exclude each other")
        references = _references(reference, no_reference)
        if pipeline:
            from retrieval.pipeline import pipeline_parts

            if model or index_dir or reference or no_reference:
                raise InputError("--pipeline gives the model, index and references: leave out --model, --index and "
                                 "--reference")
            model, index_dir, references = pipeline_parts(pipeline)
        runner = None
        if engine == "ray":
            from retrieval.runners.ray import RayEngine

            runner = RayEngine(ray_config)
        # Ray's workers search, each with its own annotator: the driver's would build a database unused
        annotator = Annotator.from_pretrained(model, index_dir, references, search_tool, settings, force,
                                              prepare_search=runner is None)
        with tqdm(unit=" proteins", desc="annotating", disable=None) as bar:
            done = annotate_file(annotator, fasta, output, fmt, config, db, skip_invalid, resume, bar.update,
                                 runner, restart)
        resumed = f", {done.resumed} of them done before" if done.resumed else ""
        click.echo(f"annotated {done.proteins} proteins{resumed} in {done.seconds:.1f} s "
                   f"({(done.proteins - done.resumed) / max(done.seconds, 1e-9):.1f} proteins/s)", err=True)

    return annotate_cmd


_annotate_command()


@main.command()
@click.option("--model", type=click.Path(exists=True, file_okay=False), help="Model folder (default: shipped model).")
@click.option("--index", "index_dir", type=click.Path(exists=True, file_okay=False),
              help="Index folder from build-index (default: all live GO).")
@click.option("--reference", type=click.Path(exists=True, file_okay=False), multiple=True,
              help="Homology reference folder, replacing the shipped references (repeatable, in the model's order).")
@click.option("--no-reference", is_flag=True, help="No homology: the two towers alone (fast, far less accurate).")
@dataclass_options(ServeConfig)
def serve(model, index_dir, reference, no_reference, **options) -> None:
    """Run the web app: paste a proteome, read ranked functions with their evidence and GO graph, ask in
    words which proteins do X; a JSON API beside it (pip install "prot-retrieve[web]")."""
    from retrieval.pipeline import PipelineSpec
    from retrieval.web.server import serve as run_server

    config = merge_options(ServeConfig(), options)
    run_server(config, PipelineSpec.of(model, index_dir, _references(reference, no_reference), None, None, False))


@main.command()
@click.option("--tolerance", type=click.FloatRange(0, 1), default=0.01, show_default=True,
              help="Largest score difference accepted.")
@_precision_option
def selftest(tolerance: float, precision: str) -> None:
    """Annotate the bundled proteins with the default pipeline and compare with the shipped golden output."""
    from retrieval.selftest import run_selftest

    report = run_selftest(tolerance, precision)
    for key, value in report.facts.items():
        click.echo(f"{key:>14}: {value}")
    for line in report.mismatches:
        click.echo(f"MISMATCH {line}")
    click.echo(f"selftest {'passed' if report.ok else 'FAILED'}: {report.checked - len(report.mismatches)} of "
               f"{report.checked} golden predictions reproduced")
    if not report.ok:
        sys.exit(1)


@main.command()
@click.option("--clear", is_flag=True, help="Remove the entries prot-retrieve made (each rebuilds itself when next "
                                            "needed); other files are listed, never removed.")
@click.option("--keep-defaults", is_flag=True,
              help="With --clear: keep what the default pipeline reads (the shipped GO index, the search database "
                   "of the shipped references, the shipped model's protein embeddings).")
def cache(clear: bool, keep_defaults: bool) -> None:
    """List what the cache holds ($PROT_RETRIEVE_CACHE, else ~/.cache/prot-retrieve), or clear what
    prot-retrieve made there (never other files, never while another prot-retrieve process runs)."""
    from retrieval.cache import cache_entries, clear as clear_cache, describe

    if not clear:
        click.echo(describe(cache_entries()))
        return
    gone, kept = clear_cache(keep_defaults)
    click.echo(f"removed {len(gone)} entries, {sum(e.size for e in gone) / 2**30:.2f} GB; kept {len(kept)}")


@main.command(name="build-reference")
@click.argument("sequences", type=_existing)
@click.argument("annotations", type=_existing, required=False)
@click.option("-o", "--output", type=click.Path(file_okay=False), required=True, help="Reference folder to write.")
@click.option("--evidence", type=click.Choice(["experimental", "curated", "all"]), default="experimental",
              show_default=True, help="GAF, GPAD, .dat: the evidence codes kept (docs/usage.md#keeping-predictions-"
                                      "current); experimental is CAFA's.")
@click.option("--taxon", "taxa", multiple=True, metavar="TAXON",
              help="Keep only proteins of this NCBI taxon (repeatable).")
@click.option("--obo", type=_existing, help="Ontology to propagate labels over (default: the shipped GO).")
@click.option("--exclude-tag", multiple=True, metavar="KEY=VALUE", help="Drop proteins with this FASTA tag. Repeatable.")
@click.option("--skip-invalid", is_flag=True, help="Skip (and count) bad FASTA records instead of failing.")
@click.option("--hold-out-terms", type=_existing,
              help="File of GO ids (one per line) whose annotations, and those of their descendants, are left out.")
@_overwrite_option
def build_reference(sequences, annotations, output, evidence, taxa, obo, exclude_tag, skip_invalid, hold_out_terms,
                    overwrite) -> None:
    """Annotated reference proteins for homology transfer, from a FASTA and annotations (this
    project's TSV, GAF 2.x or GPAD), or from a UniProt flat file (.dat) alone. NOT annotations are
    left out; the search database is built into the cache on first use."""
    from retrieval.dataset import build_reference as build
    from retrieval.dataset import parse_tag_filters
    from retrieval.io.annotations import AnnotationFilter

    ref, summary = build(sequences, annotations, output, obo, parse_tag_filters(exclude_tag), skip_invalid,
                         hold_out_terms, AnnotationFilter(evidence, taxa), overwrite)
    click.echo(f"{summary}\nreference of {len(ref.ids)} proteins, {len(ref.terms)} terms -> {output}", err=True)


@main.command(name="transfer")
@click.argument("fasta", type=_existing)
@click.option("--reference", type=click.Path(exists=True, file_okay=False), required=True, help="Reference folder.")
@click.option("--method", type=click.Choice(["knn", "top-hit"]), default="knn", show_default=True,
              help="knn: bitscore-weighted over all hits; top-hit: the best hit's terms scored by its identity.")
@_search_options
@click.option("--format", "fmt", type=click.Choice(["tsv", "cafa"]), default="tsv", show_default=True)
@click.option("-o", "--output", default="-", show_default=True, help="Predictions file ('-': stdout).")
@click.option("--skip-invalid", is_flag=True, help="Skip (and count) bad FASTA records instead of failing.")
def transfer(fasta, reference, method, settings, search_tool, fmt, output, skip_invalid) -> None:
    """Homology baselines: label transfer from an annotated reference (MMseqs2 or DIAMOND hits)."""
    from retrieval.baselines import transfer_baseline
    from retrieval.homology import Reference
    from retrieval.io.fasta import read_fasta
    from retrieval.io.writers import PredictionWriter, atomic_output

    table = transfer_baseline(read_fasta(fasta, skip_invalid=skip_invalid), Reference.load(reference), method,
                              settings, search_tool)
    with atomic_output(output, (fasta,)) as fh:
        writer = PredictionWriter(fh, fmt)
        writer.write(table)
        writer.close()


if __name__ == "__main__":
    main()
