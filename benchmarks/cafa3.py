"""Score predictors on CAFA3 (no-knowledge and limited-knowledge targets) and the 2020 time split.

    python benchmarks/cafa3.py [--data ../shared/data] [--model DIR|shipped] [--hybrid-model DIR|shipped]
                               [--reference DIR ...] [--search auto|mmseqs|diamond|embedding ...]
                               [--no-baselines] [--predictions NAME=FILE ...] [--no-time-split]

Training data: train_goa2019exp_7sp minus proteins tagged cafa3_benchmark=1; IA from its
propagated labels. Methods: naive; top hit and bitscore-weighted kNN on each reference (the shipped
ones unless --reference), with the hits of each --search tool; the two-tower model alone (--model,
annotate without homology); the hybrid (--hybrid-model with the references, in the order its
homology re-ranker was trained with), once per --search tool. CAFA3 targets carry the taxon their
id encodes (for the species prior); the 2020 split has no taxa. The 2020 split drops its
accessions that are in the training set.
Prints one table (Fmax, weighted Fmax, Smin per aspect) and the seconds each predictor took.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import click
import pandas as pd

from index.information import information_accretion
from index.labels import label_matrix
from index.ontology import Ontology
from index.propagation import Propagator
from retrieval.baselines import NaivePredictor, knn_transfer, top_hit_transfer
from retrieval.dataset import AnnotatedProteins
from retrieval.evaluation import Evaluator
from retrieval.homology.settings import SEARCHERS
from retrieval.io.fasta import ProteinRecord, read_fasta
from retrieval.io.tables import read_annotations, read_id_list, read_predictions

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _model(name: str | None) -> str | None:
    """A model folder, or the shipped one for 'shipped'."""
    from retrieval.models.retriever import DEFAULT_MODEL

    return str(DEFAULT_MODEL) if name == "shipped" else name


def with_cafa_taxa(records: list[ProteinRecord]) -> list[ProteinRecord]:
    """Tag CAFA targets with their NCBI taxon, which the target id encodes (T, taxon, 7-digit serial),
    as a proteome's UniProt FASTA would carry it in OX=."""
    return [ProteinRecord(r.id, r.sequence, r.description, {**r.tags, "taxon": r.id[1:-7]}) for r in records]


def annotate_all(model: str | None, records, reference, searcher: str = "auto") -> pd.DataFrame:
    """Every propagated score of the annotator (top large enough for Fmax over all thresholds)."""
    from retrieval.annotate import Annotator
    from retrieval.homology import SearchSettings

    annotator = Annotator.from_pretrained(model, reference=reference, settings=SearchSettings(searcher=searcher))
    table = annotator.annotate(records, top=1500, min_score=0.01)
    return table.rename(columns={"protein_id": "protein", "term_id": "term"})[["protein", "term", "score"]]


@dataclass
class Cafa3Setting:
    """The CAFA3 benchmark as every script here scores it (see the module docstring)."""

    ontology: Ontology
    propagator: Propagator
    labels: object  # propagated training labels (proteins x live terms), for the naive prior
    ia: object  # information accretion per live term, from the training labels
    train_ids: list[str]
    records: list[ProteinRecord]  # the 3,329 targets
    nk: Evaluator  # no-knowledge targets
    lk: Evaluator  # limited-knowledge targets


def cafa3_setting(data: Path) -> Cafa3Setting:
    onto = Ontology.from_obo(data / "go" / "go-basic_2021-12-15.obo.gz")
    prop = Propagator.from_ontology(onto)
    train = AnnotatedProteins.load(data / "train_goa2019exp_7sp" / "sequences.fasta.gz",
                                   data / "train_goa2019exp_7sp" / "annotations_leaf_exp.tsv.gz",
                                   {"cafa3_benchmark": "1"})
    labels, _ = label_matrix(onto, prop, train.annotations["protein"], train.annotations["term"])
    ia = information_accretion(labels, *onto.edges)
    bench = data / "test_cafa3_benchmark"
    truth = read_annotations(bench / "ground_truth_isa_propagated.tsv")
    return Cafa3Setting(onto, prop, labels, ia, train.ids, read_fasta(bench / "targets.fasta"),
                        Evaluator(onto, truth, ia=ia, targets=read_id_list(bench / "all_type1.txt"), propagator=prop),
                        Evaluator(onto, truth, ia=ia, targets=read_id_list(bench / "all_type2.txt"), propagator=prop))


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=str(DEFAULT_DATA), show_default=True)
@click.option("--model", type=click.Path(exists=True, file_okay=False),
              help="Two-tower model, scored without homology (default: none; 'shipped': the shipped model).")
@click.option("--hybrid-model", help="Model trained with homology ('shipped': the shipped model).")
@click.option("--reference", type=click.Path(exists=True, file_okay=False), multiple=True,
              help="build-reference folder, repeatable (default: the references shipped with the package).")
@click.option("--search", "searchers", multiple=True, type=click.Choice(SEARCHERS),
              help="Searchers to score the hybrid and the kNN baselines with, repeatable (default: auto).")
@click.option("--baselines/--no-baselines", default=True, show_default=True, help="Top-hit and kNN transfer rows.")
@click.option("--predictions", multiple=True, metavar="NAME=FILE", help="Extra CAFA3 prediction files to score.")
@click.option("--time-split/--no-time-split", default=True, show_default=True, help="Also score the 2020 split.")
def main(data, model, hybrid_model, reference, searchers, baselines, predictions, time_split) -> None:
    logging.basicConfig(level=logging.WARNING)
    data = Path(data)
    setting = cafa3_setting(data)
    onto, prop, labels, ia = setting.ontology, setting.propagator, setting.labels, setting.ia
    sets = {"CAFA3": (with_cafa_taxa(setting.records), [("NK", setting.nk), ("LK", setting.lk)])}
    if time_split:
        trained = set(setting.train_ids) | {r.id for r in read_fasta(data / "train_goa2019exp_7sp" / "sequences.fasta.gz")}
        # The 2020 FASTA repeats some accessions: keep the first (the reader logs how many were skipped).
        records = [r for r in read_fasta(data / "test_tale_2020" / "sequences.fasta", skip_invalid=True) if r.id not in trained]
        tale = read_annotations(data / "test_tale_2020" / "annotations_leaf.tsv")
        sets["2020"] = (records, [("time", Evaluator(onto, tale, ia=ia, targets=[r.id for r in records], propagator=prop))])
    rows = []
    for name, (records, evaluators) in sets.items():
        ids = [r.id for r in records]
        runs = _predict(records, ids, onto, labels, _model(model), _model(hybrid_model), reference,
                        searchers or ("auto",), baselines)
        if name == "CAFA3":
            runs.update({n: (read_predictions(p), 0.0) for n, p in (s.split("=", 1) for s in predictions)})
        for split, evaluator in evaluators:
            for method, (table, seconds) in runs.items():
                for r in evaluator.evaluate(table).itertuples():
                    rows.append({"split": f"{name} {split}".replace("CAFA3 ", "CAFA3-").replace("2020 time", "2020"),
                                 "method": method, "aspect": r.aspect, "Fmax": r.fmax, "wFmax": r.wfmax,
                                 "Smin": r.smin, "seconds": seconds})
    table = pd.DataFrame(rows)
    wide = table.pivot_table(index=["split", "method"], columns="aspect", values=["Fmax", "wFmax", "Smin"], sort=False)
    wide = wide.reindex(columns=[(m, a) for m in ("Fmax", "wFmax", "Smin") for a in ("MFO", "BPO", "CCO")])
    wide[("seconds", "")] = table.groupby(["split", "method"], sort=False)["seconds"].first()
    click.echo(wide.to_string(float_format=lambda x: f"{x:.3f}"))


def _predict(records, ids, onto, labels, model, hybrid_model, reference, searchers,
             baselines: bool) -> dict[str, tuple[pd.DataFrame, float]]:
    from retrieval.homology import HomologySearch, Reference, SearchSettings, Transfer
    from retrieval.homology.shipped import shipped_references

    runs = {}

    def timed(name, fn):
        start = time.perf_counter()
        runs[name] = (fn(), round(time.perf_counter() - start, 1))

    timed("naive", lambda: NaivePredictor(onto, labels).predict(ids))
    refs = [Reference.load(f) for f in reference] if reference else shipped_references()
    names = [Path(r.folder).name for r in refs]
    for searcher in searchers if baselines else ():
        start = time.perf_counter()
        search = HomologySearch(refs, SearchSettings(searcher=searcher))
        all_hits = search.hits(records)
        search_s = round((time.perf_counter() - start) / len(refs), 1)  # one pooled search, shared by the refs
        for ref, hits, name in zip(refs, all_hits, names):
            for method, fn in (("top hit", lambda: top_hit_transfer(hits, ref, ids)),
                               ("kNN", lambda: knn_transfer(Transfer.from_hits(ref, hits, ids), ref, ids))):
                label = f"{search.searcher} {method}, {name}"
                timed(label, fn)
                runs[label] = (runs[label][0], round(runs[label][1] + search_s, 1))
    if model:
        timed("two-tower", lambda: annotate_all(model, records, None))
    if hybrid_model:
        for searcher in searchers:
            timed(f"hybrid ({searcher})", lambda: annotate_all(hybrid_model, records, reference or "default",
                                                               searcher))
    return runs


if __name__ == "__main__":
    main()
