"""The ``prot-retrieve`` command line: thin click wrappers over the library API."""
from __future__ import annotations

import json
import logging
import sys
import time

import click
import pandas as pd

from index.errors import InputError

LOG = logging.getLogger("retrieval")

_existing = click.Path(exists=True, dir_okay=False)


class _Group(click.Group):
    """Turns :class:`InputError` into a one-line ``Error: ...`` and exit code 2, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except InputError as err:
            raise click.UsageError(str(err)) from None
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)


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
    with atomic_output(output) as fh:
        cat.table.to_csv(fh, sep="\t", index=False)
    click.echo(f"{len(cat)} live terms written to {output}", err=True)


@main.command()
@click.argument("annotations", type=_existing)
@click.option("--obo", type=_existing, required=True, help="Ontology to propagate over.")
@click.option("-o", "--output", default="-", show_default=True, help="IA file to write (term<TAB>ia).")
def ia(annotations: str, obo: str, output: str) -> None:
    """Information accretion of each term from an annotation table (weights for wFmax and Smin)."""
    from index.information import information_accretion
    from index.labels import label_matrix
    from index.ontology import Ontology
    from index.propagation import Propagator
    from retrieval.io.tables import read_annotations
    from retrieval.io.writers import atomic_output

    onto = Ontology.from_obo(obo)
    table = read_annotations(annotations)
    labels, _ = label_matrix(onto, Propagator.from_ontology(onto), table["protein"], table["term"])
    values = information_accretion(labels, *onto.edges)
    with atomic_output(output) as fh:
        pd.DataFrame({"term": onto.live_ids, "ia": values}).query("ia > 0").to_csv(
            fh, sep="\t", header=False, index=False, float_format="%.6g")


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
    from index.labels import label_matrix
    from index.ontology import Ontology
    from index.propagation import Propagator
    from retrieval.baselines import NaivePredictor
    from retrieval.dataset import AnnotatedProteins, parse_tag_filters
    from retrieval.io.fasta import read_fasta
    from retrieval.io.writers import atomic_output, write_cafa, write_tsv

    onto = Ontology.from_obo(obo)
    train = AnnotatedProteins.load(train_fasta, train_annotations, parse_tag_filters(exclude_tag))
    labels, _ = label_matrix(onto, Propagator.from_ontology(onto), train.annotations["protein"],
                             train.annotations["term"])
    targets = [r.id for r in read_fasta(fasta, skip_invalid=skip_invalid)]
    predictions = NaivePredictor(onto, labels).predict(targets)
    with atomic_output(output) as fh:
        (write_cafa if fmt == "cafa" else write_tsv)(predictions, fh)


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
        with atomic_output(json_out) as fh:
            json.dump({"predictions": predictions, "truth": truth, "obo": obo, "ia": ia_file, "targets": targets,
                       "results": table.to_dict(orient="records")}, fh, indent=2)
