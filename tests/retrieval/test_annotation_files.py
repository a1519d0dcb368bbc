"""GAF 2.2, GPAD 2.0 and UniProt flat files (hand-written fixtures, tests/data/annotations): NOT
left out, evidence sets, species, .gz, obsolete and alt ids, malformed lines; GAF against goatools'
reader; a reference built from each equals the one built from the same pairs as a TSV."""
import gzip
from pathlib import Path

import pytest
from click.testing import CliRunner

from index.errors import InputError
from retrieval.io.annotations import EVIDENCE, AnnotationFilter, read_gaf, read_gpad, read_uniprot_dat

DATA = Path(__file__).resolve().parents[1] / "data" / "annotations"
GAF, GPAD, DAT, FASTA = (DATA / n for n in ("sample.gaf", "sample.gpad", "sample.dat", "sample.fasta"))
EXPERIMENTAL_PAIRS = {("P1", "GO:0000003"), ("P2", "GO:0000099"), ("P2", "GO:0000092"), ("P3", "GO:0000098"),
                      ("P3", "GO:0000002"), ("P4", "GO:0000003")}


def pairs(table):
    return set(zip(table["protein"], table["term"]))


@pytest.mark.parametrize("evidence", list(EVIDENCE))
def test_gaf_agrees_with_goatools(evidence):
    from goatools.anno.gaf_reader import GafReader

    found, _ = read_gaf(GAF, AnnotationFilter(evidence))
    oracle = {(a.DB_ID, a.GO_ID) for a in GafReader(str(GAF)).get_associations()
              if "NOT" not in a.Qualifier and a.Evidence_Code in EVIDENCE[evidence]}
    assert pairs(found) == oracle


def test_gaf_leaves_out_not_other_evidence_and_other_species_and_counts_them(tmp_path):
    found, counts = read_gaf(GAF, AnnotationFilter("experimental"))
    assert pairs(found) == EXPERIMENTAL_PAIRS
    assert counts.kept == 6 and counts.left_out == {"NOT": 1, "evidence IEA": 1, "evidence ISS": 1}
    human, counts = read_gaf(GAF, AnnotationFilter("experimental", ("9606",)))
    assert pairs(human) == EXPERIMENTAL_PAIRS - {("P4", "GO:0000003")} and counts.left_out["other species"] == 1
    everything, counts = read_gaf(GAF, AnnotationFilter("all"))
    assert len(everything) == 8 and counts.left_out == {"NOT": 1}
    packed = tmp_path / "sample.gaf.gz"
    packed.write_bytes(gzip.compress(GAF.read_bytes()))
    assert pairs(read_gaf(packed, AnnotationFilter())[0]) == EXPERIMENTAL_PAIRS


def test_gpad_says_what_the_gaf_says():
    for evidence in EVIDENCE:
        gaf, gaf_counts = read_gaf(GAF, AnnotationFilter(evidence))
        gpad, gpad_counts = read_gpad(GPAD, AnnotationFilter(evidence))
        assert pairs(gpad) == pairs(gaf) and gpad_counts.left_out == gaf_counts.left_out, evidence


def test_uniprot_flat_file():
    records, found, counts = read_uniprot_dat(DAT, AnnotationFilter("experimental"))
    assert [(r.id, r.taxon, len(r.sequence), r.db, r.entry_name) for r in records] == [
        ("P11111", "9606", 30, "UniProtKB", "TEST1_HUMAN"), ("P22222", "10090", 25, "UniProtKB", "TEST2_MOUSE")]
    assert pairs(found) == {("P11111", "GO:0000003"), ("P11111", "GO:0000092"), ("P22222", "GO:0000099")}
    assert counts.left_out == {"evidence IEA": 1, "evidence ISS": 1}
    mouse, _, _ = read_uniprot_dat(DAT, AnnotationFilter("all", ("10090",)))
    assert [r.id for r in mouse] == ["P22222"]


@pytest.mark.parametrize("text, fmt, words", [
    ("!gaf-version: 2.2\nUniProtKB\tP1\tGENE1\tenables\n", "gaf", "sample.gaf:2: not a GAF annotation line"),
    ("!gpad-version: 2.0\nP1\t\tRO:1\tGO:0000003\n", "gpad", "sample.gpad:2: not a GPAD 2.0 line"),
    ("ID   X\nAC   P1;\nthis is not a flat file\n", "dat", "not a readable UniProt flat file"),
])
def test_a_malformed_line_is_one_error_naming_it(tmp_path, text, fmt, words):
    path = tmp_path / f"sample.{fmt}"
    path.write_text(text)
    read = {"gaf": read_gaf, "gpad": read_gpad, "dat": lambda p, k: read_uniprot_dat(p, k)}[fmt]
    with pytest.raises(InputError, match=words):
        read(path, AnnotationFilter())


def test_filters_are_checked():
    with pytest.raises(InputError, match="--evidence must be one of"):
        AnnotationFilter("some")
    with pytest.raises(InputError, match="--taxon"):
        AnnotationFilter(taxa=("human",))


def _reference(tmp_path, name, *args):
    from retrieval.cli import main
    from retrieval.homology import Reference

    result = CliRunner().invoke(main, ["build-reference", *map(str, args), "--obo", str(DATA.parent / "toy.obo"),
                                       "-o", str(tmp_path / name)])
    assert result.exit_code == 0, result.output
    return Reference.load(tmp_path / name), result.output


def _labels(reference) -> dict[str, set[str]]:
    return {p: set(reference.terms[reference.labels[i].indices]) for i, p in enumerate(reference.ids)}


def test_references_from_each_format_equal_the_tsv_built_from_the_same_pairs(tmp_path):
    """Readers -> reference equals TSV -> reference, label for label; and annotate with either gives
    the same output."""
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("EntryID\tterm\n" + "".join(f"{p}\t{t}\n" for p, t in sorted(EXPERIMENTAL_PAIRS)))
    from_tsv, _ = _reference(tmp_path, "tsv", FASTA, tsv)
    from_gaf, said = _reference(tmp_path, "gaf", FASTA, GAF)
    from_gpad, _ = _reference(tmp_path, "gpad", FASTA, GPAD)
    assert _labels(from_gaf) == _labels(from_tsv) == _labels(from_gpad)
    assert _labels(from_gaf)["P2"] == {"GO:0000011", "GO:0000010", "GO:0000002", "GO:0000001"}  # replaced, alt
    assert "1 NOT" in said and "2 annotations of alt or replaced ids mapped" in said and "1 of obsolete" in said
    from_dat, _ = _reference(tmp_path, "dat", DAT)
    assert _labels(from_dat) == {"P11111": {"GO:0000003", "GO:0000002", "GO:0000001"},
                                 "P22222": {"GO:0000011", "GO:0000010"}}


def test_annotating_with_a_gaf_built_reference_equals_the_tsv_built_one(tmp_path, saved_pipeline):
    from retrieval.cli import main

    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("EntryID\tterm\n" + "".join(f"{p}\t{t}\n" for p, t in sorted(EXPERIMENTAL_PAIRS)))
    _reference(tmp_path, "tsv", FASTA, tsv)
    _reference(tmp_path, "gaf", FASTA, GAF)
    model, index = saved_pipeline
    outputs = []
    for name in ("tsv", "gaf"):
        out = tmp_path / f"{name}.out"
        result = CliRunner().invoke(main, ["annotate", str(FASTA), "--model", str(model), "--index", str(index),
                                           "--reference", str(tmp_path / name), "--search", "embedding",
                                           "--top", "5", "-o", str(out)])
        assert result.exit_code == 0, result.output
        outputs.append([line for line in out.read_text().splitlines() if not line.startswith("# references")])
    assert outputs[0] == outputs[1]


def test_build_reference_refuses_mismatched_inputs(tmp_path):
    from retrieval.cli import main

    for args, words in [([DAT, GAF], "holds its annotations: give it alone"), ([FASTA], "give the annotations too"),
                        ([FASTA, DAT], "give it alone, in place of the FASTA")]:
        result = CliRunner().invoke(main, ["build-reference", *map(str, args), "-o", str(tmp_path / "r")])
        assert result.exit_code == 2 and words in result.output, result.output
    assert not (tmp_path / "r").exists()
