"""Build the public data the package ships, from ``../shared/data``: the default references and the
all-GO index of the shipped model.

    python -m train.shipped_data [--data ../shared/data]

Writes ``retrieval/data/references/`` (see :mod:`retrieval.homology.shipped`),
``retrieval/data/go_index/`` (``index.faiss`` as fp16, ``meaning.faiss`` 8-bit + ``index_config.json``; the catalogue and GO
edges are rebuilt from the shipped OBO on first use, see :func:`retrieval.indexing.default_index`)
and the golden output of ``prot-retrieve selftest`` (:mod:`retrieval.selftest`).
The references must come out with the fingerprints the shipped homology re-ranker recorded, or the
script stops. The outputs are deterministic: the same inputs give the same bytes.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path

import click
import faiss
import numpy as np

from index.ontology import Ontology
from index.propagation import Propagator
from index.vector_index import MEANING_FILE
from retrieval.dataset import AnnotatedProteins
from retrieval.homology.reference import META, Reference
from retrieval.homology.shipped import MANIFEST, SHIPPED_REFERENCES
from retrieval.indexing import DEFAULT_OBO, SHIPPED_INDEX, build_function_index
from retrieval.models.retriever import RetrievalModel
from retrieval.selftest import GOLDEN

LOG = logging.getLogger(__name__)
PARTS = ("references", "index", "golden")
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
LICENCE = ("GO annotations and the Gene Ontology: CC BY 4.0 (Gene Ontology Consortium; UniProt-GOA). "
           "Swiss-Prot 2014_01 sequences: UniProt, CC BY 4.0, obtained via Debian's metastudent-data (GPL-2+).")
#: (name, FASTA, annotations, description), in the order the shipped homology re-ranker reads them.
SOURCES = (
    ("exp7sp", "train_goa2019exp_7sp/sequences.fasta.gz", "train_goa2019exp_7sp/annotations_leaf_exp.tsv.gz",
     "experimental GO annotations of 7 species (GOA 2019-01-29), Swiss-Prot 2014_01 sequences"),
    ("sp2014", "train_cafa3ids_sp2014/sequences.fasta.gz", "train_cafa3ids_sp2014/annotations_sp2014_allevidence.tsv.gz",
     "Swiss-Prot 2014_01 GO annotations of the CAFA3 training proteins, all evidence codes"),
)


def build_references(data: Path, out: Path, expected: list[str]) -> None:
    """The shipped references: one pooled FASTA, labels per reference; CAFA3 targets held out."""
    onto = Ontology.from_obo(data / "go" / "go-basic_2021-12-15.obo.gz")
    propagator = Propagator.from_ontology(onto)
    tmp = Path(tempfile.mkdtemp(prefix=".references.", dir=out.parent))
    sequences: dict[str, str] = {}
    entries = []
    for (name, fasta, labels_file, description), fingerprint in zip(SOURCES, expected):
        proteins = AnnotatedProteins.load(data / fasta, data / labels_file, {"cafa3_benchmark": "1"})
        built = Reference.build(proteins.records, proteins.annotations, onto, propagator, tmp / "build" / name)
        if built.fingerprint() != fingerprint:
            raise SystemExit(f"{name}: fingerprint {built.fingerprint()} is not the re-ranker's {fingerprint}")
        for record in built.records():
            if sequences.setdefault(record.id, record.sequence) != record.sequence:
                raise SystemExit(f"{record.id}: two references hold different sequences")
        (tmp / name).mkdir()
        shutil.copy(tmp / "build" / name / "labels.npz", tmp / name / "labels.npz")
        meta = {**json.loads((tmp / "build" / name / META).read_text()), "sequences": "../sequences.fasta.gz",
                "description": description, "source_files": [fasta, labels_file]}
        (tmp / name / META).write_text(json.dumps(meta, indent=2) + "\n")
        entries.append({"name": name, "fingerprint": fingerprint, "n_proteins": len(built.ids),
                        "description": description})
    shutil.rmtree(tmp / "build")
    with gzip.GzipFile(tmp / "sequences.fasta.gz", "wb", compresslevel=9, mtime=0) as fh:
        fh.write("".join(f">{k}\n{s}\n" for k, s in sorted(sequences.items())).encode())
    manifest = {"references": entries, "ontology_release": onto.release, "held_out": "cafa3_benchmark=1",
                "licence": LICENCE, "built_by": "python -m train.shipped_data"}
    (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)


def write_golden(out: Path) -> None:
    """The default pipeline's predictions for the bundled proteins (what ``selftest`` compares with)."""
    from retrieval.selftest import GOLDEN_DIGEST, GOLDEN_TOP, default_predictions

    table, annotator = default_predictions(GOLDEN_TOP, precision="bf16")  # the same file from every machine
    with open(out, "w") as fh:
        fh.write(f"# prot-retrieve selftest golden output: model {annotator.model.fingerprint()}, "
                 f"search {annotator.homology.summary()}\n")
        table[["protein_id", "term_id", "score"]].to_csv(fh, sep="\t", index=False, float_format="%.4f")
    digest = {"sha256": hashlib.sha256(out.read_bytes()).hexdigest(), "rows": len(table)}
    (out.parent / GOLDEN_DIGEST.name).write_text(json.dumps(digest, indent=1) + "\n")


def build_go_index(model: RetrievalModel, out: Path) -> None:
    """All live GO terms of the shipped release embedded by the model, stored as fp16 vectors, and
    their meaning vectors (8-bit)."""
    ontology = Ontology.from_obo(DEFAULT_OBO)
    from index.catalogue import FunctionCatalogue

    index = build_function_index(model, FunctionCatalogue.from_ontology(ontology), ontology=ontology)
    vectors = index.vectors(np.arange(len(index.catalogue)))
    compact = faiss.index_factory(vectors.shape[1], "SQfp16", faiss.METRIC_INNER_PRODUCT)
    compact.train(vectors)
    compact.add(vectors)
    out.mkdir(parents=True, exist_ok=True)
    faiss.write_index(compact, str(out / "index.faiss"))
    faiss.write_index(index.meaning_index, str(out / MEANING_FILE))
    config = {**index.config, "factory": "SQfp16"}
    config["build"] = {k: v for k, v in config["build"].items() if not k.endswith("seconds")}
    (out / "index_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=str(DEFAULT_DATA), show_default=True)
@click.option("--only", type=click.Choice(PARTS), multiple=True, help="Build only these parts (default: all).")
def main(data: str, only: tuple[str, ...]) -> None:
    logging.basicConfig(level=logging.INFO)
    model = RetrievalModel.from_pretrained()
    parts = only or PARTS
    if "references" in parts:
        build_references(Path(data), SHIPPED_REFERENCES, [r["fingerprint"] for r in model.info["homology_references"]])
        click.echo(f"references -> {SHIPPED_REFERENCES}", err=True)
    if "index" in parts:
        build_go_index(model, SHIPPED_INDEX)
        click.echo(f"GO index -> {SHIPPED_INDEX}", err=True)
    if "golden" in parts:  # last: it annotates with the two parts above
        write_golden(GOLDEN)
        click.echo(f"selftest golden output -> {GOLDEN}", err=True)


if __name__ == "__main__":
    main()
