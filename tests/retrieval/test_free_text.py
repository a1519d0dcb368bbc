"""Functions written in plain words (examples/free_text_functions.tsv), scored by the shipped model
through the API and through build-index + annotate, against hand-checked expectations."""
import io
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from index.catalogue import FunctionCatalogue
from retrieval.io.fasta import read_fasta
from retrieval.models.retriever import DEFAULT_MODEL

EXAMPLES = Path(__file__).parents[2] / "examples"
#: Proteins whose own function, in words, the shipped towers rank first of the 14 (checked by hand:
#: lysozyme breaks cell walls, collagen is a structural fibre, EGFR a tyrosine-kinase receptor, p53
#: switches on genes after DNA damage, histone H4 packs DNA, actin builds filaments, SOD1 destroys
#: superoxide). The other 7 of the 14 (hemoglobin among them) are not ranked first: see docs/benchmarks.md.
FIRST = {"P61626": "wall_breaker", "P02452": "structural_fibre", "P00533": "growth_receptor",
         "P04637": "genome_guardian", "P62805": "dna_packer", "P60709": "cell_skeleton", "P00441": "radical_scavenger"}

pytestmark = pytest.mark.skipif(not (DEFAULT_MODEL / "retriever.json").is_file(), reason="package installed without its model")


@pytest.fixture(scope="module")
def scores():
    from retrieval.annotate import Annotator

    annotator = Annotator.from_pretrained(reference=None)
    texts = FunctionCatalogue.from_tsv(EXAMPLES / "free_text_functions.tsv")
    return annotator.score(read_fasta(EXAMPLES / "free_text_proteins.fasta"), texts), annotator


def test_free_text_scores_rank_each_proteins_own_function(scores):
    table, _ = scores
    assert table.shape == (14, 14)
    best = table.idxmax(axis=1)
    assert {p: best[p] for p in FIRST} == FIRST
    # Each header names the function it was written for; the diagonal ranks first 7 times of 14.
    own = {r.id: r.description.split("expected: ")[1].split(")")[0] for r in read_fasta(EXAMPLES / "free_text_proteins.fasta")}
    assert sum(best[p] == f for p, f in own.items()) == 7


def test_plain_strings_score_as_the_catalogue_does(scores):
    table, annotator = scores
    texts = FunctionCatalogue.from_tsv(EXAMPLES / "free_text_functions.tsv")
    lysozyme = [r for r in read_fasta(EXAMPLES / "free_text_proteins.fasta") if r.id == "P61626"]
    as_strings = annotator.score(lysozyme, [f"{n}: {d}" for n, d in zip(texts.table["name"], texts.table["description"])])
    assert (as_strings.to_numpy() - table.loc[["P61626"]].to_numpy()).max() < 1e-6


def test_build_index_and_annotate_with_a_free_text_catalogue(scores, tmp_path, monkeypatch):
    from retrieval.cli import main

    monkeypatch.setenv("PROT_RETRIEVE_CACHE", str(tmp_path / "cache"))
    table, _ = scores
    run = CliRunner().invoke
    built = run(main, ["build-index", str(EXAMPLES / "free_text_functions.tsv"), "-o", str(tmp_path / "index")])
    assert built.exit_code == 0, built.output
    out = run(main, ["annotate", str(EXAMPLES / "free_text_proteins.fasta"), "--index", str(tmp_path / "index"),
                     "--no-reference", "--top", "1"])
    assert out.exit_code == 0, out.output
    top = pd.read_csv(io.StringIO(out.stdout), sep="\t", comment="#").set_index("protein_id")["term_id"]
    assert top.to_dict() == table.idxmax(axis=1).to_dict()


#: With the shipped references, each protein's hit on itself hidden (they are reference proteins), the
#: plain-words functions borrow from the GO terms nearest in meaning, and 11 of the 14 proteins rank
#: their own function first: hemoglobin's "carries oxygen in the blood" too. Trypsin (its text lends
#: from lysine metabolism), EGFR and carbonic anhydrase do not.
FIRST_WITH_HOMOLOGY = {"P69905": "oxygen_carrier", "P01308": "sugar_hormone", "P61626": "wall_breaker",
                       "P08100": "light_sensor", "P99999": "electron_shuttle", "P02794": "iron_store",
                       "P02452": "structural_fibre", "P04637": "genome_guardian", "P62805": "dna_packer",
                       "P60709": "cell_skeleton", "P00441": "radical_scavenger"}


@pytest.mark.slow
def test_with_homology_free_text_borrows_from_go_and_hemoglobin_carries_oxygen(tmp_path, monkeypatch):
    from retrieval.annotate import Annotator
    from retrieval.cli import main
    from train.thresholds import WithoutSelfHits

    monkeypatch.setenv("PROT_RETRIEVE_CACHE", str(tmp_path / "cache"))
    annotator = Annotator.from_pretrained()
    annotator.homology = WithoutSelfHits(annotator.homology)
    records = read_fasta(EXAMPLES / "free_text_proteins.fasta")
    table = annotator.score(records, FunctionCatalogue.from_tsv(EXAMPLES / "free_text_functions.tsv"))
    best = table.idxmax(axis=1)
    assert {p: f for p, f in best.items() if f == FIRST_WITH_HOMOLOGY.get(p)} == FIRST_WITH_HOMOLOGY
    towers = Annotator.from_pretrained(reference=None).score(records, ["carries oxygen in the blood: binds heme "
                                                                       "and picks up oxygen in the lungs to release "
                                                                       "it in the tissues"])
    assert table.loc["P69905", "oxygen_carrier"] > 2 * towers.iloc[0, 0]  # the borrowed part, not the towers
    # The command line, default references (self-hits kept): a free-text index borrows from GO as well.
    run = CliRunner().invoke
    assert run(main, ["build-index", str(EXAMPLES / "free_text_functions.tsv"), "-o", str(tmp_path / "i")]).exit_code == 0
    out = run(main, ["annotate", str(EXAMPLES / "free_text_proteins.fasta"), "--index", str(tmp_path / "i"), "--top", "1"])
    assert out.exit_code == 0, out.output
    top = pd.read_csv(io.StringIO(out.stdout), sep="\t", comment="#").set_index("protein_id")["term_id"]
    assert top["P69905"] == "oxygen_carrier"
