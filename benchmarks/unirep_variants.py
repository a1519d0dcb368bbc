"""Issue 31: UniRep's knowledge, measured against the shipped model.

    python benchmarks/unirep_variants.py vectors [--folder runs/unirep256]
        the teacher's vectors of the CAFA3 and 2020 targets, the shipped references and the training
        proteins (about 70,000 sequences, 45 minutes on 2 cores; resumable)
    python benchmarks/unirep_variants.py rerank-teacher -o runs/unirep_c
        variant (c): the shipped towers, a homology re-ranker that also reads the transfer features of
        each protein's nearest exp7sp proteins by teacher vector (a third source of evidence)
    python benchmarks/unirep_variants.py evaluate [--variant NAME=MODEL ...] [--teacher-variant NAME=MODEL ...]
                                                  [--towers-of NAME ...]
        CAFA3 NK / LK and 2020 Fmax of the shipped hybrid and each variant (`--variant`: a model
        folder served with the shipped references; `--teacher-variant`: a model from rerank-teacher,
        served with the teacher's neighbours too); writes each variant's CAFA3 predictions to
        runs/unirep_predictions/NAME.tsv for homology_strata.py --predictions.
    python benchmarks/unirep_variants.py free-text [--variant NAME=MODEL ...]
        how many of the 14 proteins of examples/free_text_proteins.fasta rank their own plain-words
        function (examples/free_text_functions.tsv) first: towers alone, and with the shipped
        references (each protein's hit on itself hidden: they are reference proteins)
    python benchmarks/unirep_variants.py tower-speed [--variant NAME=MODEL ...] [--limit N]
        seconds for each model's protein tower to embed the CAFA3 targets with an empty cache (a
        frozen UniRep tower runs UniRep on every window)
    python benchmarks/unirep_variants.py frozen-features [--folder runs/unirep256]
        variant (b)'s tower (frozen UniRep-256 + a trained projection) reads its window features from
        the feature cache: put the teacher's vectors there (the first window of each sequence) and
        compute the other windows of the long training proteins and targets

Variant (a), distillation, is `prot-retrieve train` with `--distill-teacher runs/unirep256`; variant
(b) is `prot-retrieve train --protein-backbone unirep-256` (see docs/experiments.md for the commands).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import click
import numpy as np
import pandas as pd
import torch

from retrieval.evaluation import Evaluator
from retrieval.homology import Reference
from retrieval.homology.search import embedding_search
from retrieval.io.fasta import read_fasta
from retrieval.io.tables import read_annotations
from train.teacher import TeacherVectors

from cafa3 import DEFAULT_DATA, cafa3_setting, with_cafa_taxa  # the sibling script
from machine import machine_line

REFERENCES = Path(__file__).resolve().parents[1] / "retrieval" / "data" / "references"


def inputs(data: Path) -> dict[str, Path]:
    return {"cafa3 targets": data / "test_cafa3_benchmark" / "targets.fasta",
            "2020 targets": data / "test_tale_2020" / "sequences.fasta",
            "references": REFERENCES / "sequences.fasta.gz",
            "training": data / "train_goa2019exp_7sp" / "sequences.fasta.gz"}


class TeacherNeighbours:
    """A homology search plus one more source of evidence: each query's ``k`` nearest proteins of
    ``reference`` by teacher vector (standardised per dimension, cosine), as hits.

    The cosine stands in for identity, capped at ``cap`` percent: training proteins have their
    sequence hits above 80 % identity hidden, and an uncapped cosine would let them see closer
    neighbours through the teacher than new proteins have.
    """

    def __init__(self, search, reference: Reference, teacher: TeacherVectors, k: int = 10, cap: float = 80.0):
        self.search, self.teacher, self.k, self.cap = search, teacher, k, cap
        self.references = list(search.references) + [reference]
        vectors = teacher.vectors([r.sequence for r in reference.records()])
        self.mean, self.std = vectors.mean(0), vectors.std(0) + 1e-6
        self.vectors, self.ids = self._unit(vectors), np.asarray(reference.ids)

    def _unit(self, vectors: np.ndarray) -> np.ndarray:
        z = (vectors - self.mean) / self.std
        return (z / np.linalg.norm(z, axis=1, keepdims=True)).astype(np.float32)

    def hits(self, records, u=None) -> list[pd.DataFrame]:
        queries = self._unit(self.teacher.vectors([r.sequence for r in records]))
        found = embedding_search(self.vectors, self.ids, queries, [r.id for r in records], self.k)
        found["identity"] = found["identity"].clip(upper=self.cap)
        return self.search.hits(records, u) + [found]

    def describe(self) -> dict[str, str]:
        return {**self.search.describe(), "teacher": f"{self.teacher.spec.model}-{self.teacher.spec.size} k={self.k}"}

    def settings_described(self):
        return self.search.settings_described() + [("teacher", f"{self.teacher.spec.model}-{self.teacher.spec.size}")]

    def summary(self) -> str:
        return f"{self.search.summary()} + {self.teacher.spec.model}-{self.teacher.spec.size} neighbours"


def teacher_search(search, folder: Path) -> TeacherNeighbours:
    from retrieval.homology.shipped import shipped_references

    exp7sp = next(r for r in shipped_references() if Path(r.folder).name == "exp7sp")
    return TeacherNeighbours(search, exp7sp, TeacherVectors.existing(folder))


@click.group()
def cli():
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")


@cli.command()
@click.option("--data", type=click.Path(path_type=Path), default=DEFAULT_DATA)
@click.option("--folder", type=click.Path(path_type=Path), default=Path("runs/unirep256"))
@click.option("--threads", type=int, default=2)
def vectors(data, folder, threads):
    """The teacher's vectors of every protein the variants read."""
    torch.set_num_threads(threads)
    store = TeacherVectors(folder)
    for name, path in inputs(data).items():
        sequences = [r.sequence for r in read_fasta(path, skip_invalid=True)]  # the 2020 file repeats ids
        started = time.perf_counter()
        done = store.compute(sequences)
        took = time.perf_counter() - started
        print(f"{name}: {len(sequences)} sequences, {done} computed in {took:.0f} s"
              + (f" ({done / took:.1f} proteins/s)" if done else ""), flush=True)
    print(machine_line())


@cli.command("rerank-teacher")
@click.option("--teacher", type=click.Path(path_type=Path), default=Path("runs/unirep256"))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True)
def rerank_teacher(teacher, output):
    """Variant (c): the shipped model's homology re-ranker retrained with teacher neighbours."""
    from retrieval.homology.shipped import shipped_references
    from retrieval.models.retriever import DEFAULT_MODEL, RetrievalModel
    from train.cli import TRAINING_SEARCH
    from train.loop import retrain_reranker
    from train.rerank import HomologyTraining

    shown = HomologyTraining.recorded(RetrievalModel.from_pretrained(DEFAULT_MODEL).info)
    folders = [str(r.folder) for r in shipped_references()]
    print(retrain_reranker(str(DEFAULT_MODEL), folders, str(output), shown=shown, settings=TRAINING_SEARCH,
                           extend_search=lambda search: teacher_search(search, teacher)))


def _annotator(model: str | None, teacher: Path | None, towers: bool = False):
    from retrieval.annotate import Annotator
    from retrieval.homology import HomologySearch
    from retrieval.homology.shipped import shipped_references
    from retrieval.indexing import default_index
    from retrieval.models.retriever import RetrievalModel

    if towers:
        return Annotator.from_pretrained(model, reference=None)
    if teacher is None:
        return Annotator.from_pretrained(model)
    retrieval_model = RetrievalModel.from_pretrained(model)
    search = teacher_search(HomologySearch(shipped_references(), protein_encoder=retrieval_model.protein_encoder),
                            teacher)
    return Annotator(retrieval_model, default_index(retrieval_model), search)


@cli.command()
@click.option("--data", type=click.Path(path_type=Path), default=DEFAULT_DATA)
@click.option("--variant", "variants", multiple=True, metavar="NAME=MODEL")
@click.option("--teacher-variant", "teacher_variants", multiple=True, metavar="NAME=MODEL")
@click.option("--teacher", type=click.Path(path_type=Path), default=Path("runs/unirep256"))
@click.option("--predictions", type=click.Path(path_type=Path), default=Path("runs/unirep_predictions"))
@click.option("--towers-of", "towers", multiple=True, metavar="NAME",
              help="Also score these models' towers alone (shipped, or a --variant's NAME).")
@click.option("--shipped/--no-shipped", default=True, show_default=True, help="Score the shipped hybrid too.")
def evaluate(data, variants, teacher_variants, teacher, predictions, towers, shipped):
    """Fmax of the shipped hybrid and the variants on CAFA3 NK / LK and the 2020 split."""
    logging.getLogger().setLevel(logging.WARNING)
    setting = cafa3_setting(data)
    trained = set(setting.train_ids) | {r.id for r in read_fasta(data / "train_goa2019exp_7sp" / "sequences.fasta.gz")}
    later = [r for r in read_fasta(data / "test_tale_2020" / "sequences.fasta", skip_invalid=True) if r.id not in trained]
    time_split = Evaluator(setting.ontology, read_annotations(data / "test_tale_2020" / "annotations_leaf.tsv"),
                           ia=setting.ia, targets=[r.id for r in later], propagator=setting.propagator)
    models = [("shipped", None)] * shipped + [tuple(v.split("=", 1)) for v in variants]
    runs = [(name, model, None, False) for name, model in models] \
        + [(*v.split("=", 1), teacher, False) for v in teacher_variants] \
        + [(f"{name} towers", model, None, True) for name, model in dict([("shipped", None)] + models).items()
           if name in towers]
    predictions.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, model, with_teacher, towers_alone in runs:
        annotator = _annotator(model, with_teacher, towers_alone)
        for split, records, evaluators in (("CAFA3", with_cafa_taxa(setting.records), (("NK", setting.nk), ("LK", setting.lk))),
                                           ("2020", later, (("2020", time_split),))):
            started = time.perf_counter()
            table = annotator.annotate(records, top=1500, min_score=0.01)
            seconds = time.perf_counter() - started
            table = table.rename(columns={"protein_id": "protein", "term_id": "term"})[["protein", "term", "score"]]
            if split == "CAFA3":
                table.to_csv(predictions / f"{name.replace(' ', '_')}.tsv", sep="\t", index=False,
                             header=["protein_id", "term_id", "score"])
            for label, evaluator in evaluators:
                fmax = evaluator.evaluate(table).set_index("aspect")["fmax"]
                rows.append({"variant": name, "split": label, **{a: fmax.get(a, np.nan) for a in ("MFO", "BPO", "CCO")},
                             "seconds": round(seconds, 1)})
        print(pd.DataFrame(rows).to_string(float_format=lambda x: f"{x:.3f}", index=False), flush=True)
    print(machine_line())


@cli.command("free-text")
@click.option("--variant", "variants", multiple=True, metavar="NAME=MODEL")
def free_text(variants):
    """Own function ranked first, of the 14 plain-words examples, per model."""
    from index.catalogue import FunctionCatalogue
    from retrieval.annotate import Annotator
    from train.thresholds import WithoutSelfHits

    examples = Path(__file__).resolve().parents[1] / "examples"
    records = read_fasta(examples / "free_text_proteins.fasta")
    own = {r.id: r.description.split("expected: ")[1].split(")")[0] for r in records}
    catalogue = FunctionCatalogue.from_tsv(examples / "free_text_functions.tsv")
    rows = []
    for name, model in [("shipped", None)] + [tuple(v.split("=", 1)) for v in variants]:
        towers = Annotator.from_pretrained(model, reference=None)
        hybrid = Annotator.from_pretrained(model)
        hybrid.homology = WithoutSelfHits(hybrid.homology)
        row = {"model": name}
        for label, annotator in (("towers", towers), ("with homology", hybrid)):
            best = annotator.score(records, catalogue).idxmax(axis=1)
            row[label] = sum(best[p] == f for p, f in own.items())
            row[f"{label}: not first"] = " ".join(sorted(p for p, f in own.items() if best[p] != f))
        rows.append(row)
    print(pd.DataFrame(rows).to_string(index=False))


@cli.command("tower-speed")
@click.option("--data", type=click.Path(path_type=Path), default=DEFAULT_DATA)
@click.option("--variant", "variants", multiple=True, metavar="NAME=MODEL")
@click.option("--limit", type=int, default=0, help="Only the first N targets (0: all 3,329).")
def tower_speed(data, variants, limit):
    """Protein-tower throughput on the CAFA3 targets, nothing cached."""
    import os
    import tempfile

    from retrieval.models.retriever import DEFAULT_MODEL, RetrievalModel

    sequences = [r.sequence for r in read_fasta(data / "test_cafa3_benchmark" / "targets.fasta")]
    sequences = sequences[:limit] if limit else sequences
    for name, model in [("shipped", str(DEFAULT_MODEL))] + [tuple(v.split("=", 1)) for v in variants]:
        with tempfile.TemporaryDirectory() as empty:
            os.environ["PROT_RETRIEVE_CACHE"] = empty  # read when the tower first opens its cache
            tower = RetrievalModel.from_pretrained(model).protein_encoder
            started = time.perf_counter()
            tower.encode(sequences)
            took = time.perf_counter() - started
        print(f"{name} ({tower.config.backbone}): {len(sequences)} proteins in "
              f"{took:.1f} s, {len(sequences) / took:.1f} proteins/s", flush=True)
    print(machine_line())


@cli.command("frozen-features")
@click.option("--data", type=click.Path(path_type=Path), default=DEFAULT_DATA)
@click.option("--folder", type=click.Path(path_type=Path), default=Path("runs/unirep256"))
@click.option("--threads", type=int, default=2)
def frozen_features(data, folder, threads):
    """Variant (b)'s window features in the feature cache, from the teacher's vectors."""
    from retrieval.models.protein_encoder import ProteinEncoder, ProteinEncoderConfig

    torch.set_num_threads(threads)
    store = TeacherVectors.existing(folder)
    tower = ProteinEncoder(ProteinEncoderConfig(backbone=f"unirep-{store.spec.size}"))
    if tower.config.max_residues != store.spec.max_length:
        raise click.ClickException("the teacher's cut is not the tower's window: its vectors are not window features")
    cache = tower.window_cache()
    for name, path in inputs(data).items():
        if name == "references":  # the homology re-ranker reads the references' hits, not their vectors
            continue
        sequences = list(dict.fromkeys(r.sequence for r in read_fasta(path, skip_invalid=True)))
        known = [s for s in sequences if s in store]
        cache.add([tower.windows(s)[0] for s in known], store.vectors(known))  # the teacher's cut: the first window
        started = time.perf_counter()
        tower.pooled_features(sequences, progress=True)  # computes the windows still missing
        print(f"{name}: {len(sequences)} sequences, {len(known)} from the teacher, the other windows in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
    print(machine_line())


if __name__ == "__main__":
    cli()
