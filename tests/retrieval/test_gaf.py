"""GAF 2.2 output read back by an independent reader (goatools), column by column."""
import datetime
import sys

import pytest
from click.testing import CliRunner

from retrieval.cli import main

reader_gaf = pytest.importorskip("goatools.anno.init.reader_gaf")

HBA = "MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHFDLSHGSAQVKGHGKKVADALTNAVAHVDDMPNALSALSDLHAHKLRVDPVNFKLLSHCLLVTLAAHLPAEFTPAVHASLDKFLASVSTVLTSKYR"
KIN = "MSDNGPQNQRNAPRITFGGPSDSTGSNQNGERSGARSKQRRPQGLPNNTASWFTALTQHGKEDLKFPRGQGVPINTNSSPDDQIGYYRRATRRIRGGDGKMKDLSPRWYFYYLGTGPEAG"


@pytest.fixture
def gaf(tmp_path, saved_pipeline, toy_obo):
    runner = CliRunner()
    # Two UniProt reference proteins: P69905 (GO:0000004) and Q9Y2X3 (GO:0000011).
    (tmp_path / "ref.fa").write_text(f">P69905\n{HBA}\n>Q9Y2X3\n{KIN}\n")
    (tmp_path / "ref.tsv").write_text("EntryID\tterm\nP69905\tGO:0000004\nQ9Y2X3\tGO:0000011\n")
    assert runner.invoke(main, ["build-reference", str(tmp_path / "ref.fa"), str(tmp_path / "ref.tsv"),
                                "-o", str(tmp_path / "ref"), "--obo", str(toy_obo)]).exit_code == 0
    (tmp_path / "in.fa").write_text(
        f">sp|P01942|HBA_MOUSE Hemoglobin subunit alpha OS=Mus musculus OX=10090 GN=Hba\n{HBA[:-3]}\n"
        f">tr|A0A024R161|A0A024R161_HUMAN Uncharacterized\n{KIN[:-4]}\n"
        f">FBpp0070000 a fly protein\n{HBA[5:]}\n")

    def run(*extra):
        out = tmp_path / "out.gaf"
        result = runner.invoke(main, ["annotate", str(tmp_path / "in.fa"), "--model", str(tmp_path / "model"),
                                      "--index", str(tmp_path / "index"), "--reference", str(tmp_path / "ref"),
                                      "--search", "embedding", "--top", "3", "--format", "gaf", "-o", str(out),
                                      *extra])
        return result, out

    return run


def test_gaf_validates_and_every_column_is_right(gaf):
    result, out = gaf("--taxon", "9606", "--db", "FlyBase")
    assert result.exit_code == 0, result.output
    header = out.read_text().splitlines()
    assert header[0] == "!gaf-version: 2.2" and any(h.startswith("!model: ") for h in header)
    assert any(h.startswith("!references: ") for h in header)
    reader = reader_gaf.InitAssc(str(out))
    rows = reader.init_associations(hdr_only=False, prt=None, namespaces=None, allow_missing_symbol=False)
    # goatools' own GAF 2.2 checks: no line ignored or illegal, every field's cardinality right.
    assert reader.datobj.ver == "2.2" and not reader.datobj.ignored and not reader.datobj.illegal_lines
    assert reader_gaf.GafData("2.2").chk(rows, sys.stderr) and len(rows) == 9
    by_id = {r.DB_ID: r for r in rows}
    mouse, human, fly = by_id["P01942"], by_id["A0A024R161"], by_id["FBpp0070000"]
    assert (mouse.DB, mouse.DB_Symbol, mouse.Taxon) == ("UniProtKB", "Hba", [10090])  # GN=, OX=
    assert (human.DB, human.DB_Symbol, human.Taxon) == ("UniProtKB", "A0A024R161_HUMAN", [9606])  # --taxon
    assert (fly.DB, fly.DB_Symbol, fly.Taxon) == ("FlyBase", "FBpp0070000", [9606])  # --db
    today = datetime.date.today()
    relation = {"MF": {"enables"}, "BP": {"involved_in"}, "CC": {"located_in"}}
    for r in rows:
        assert r.Evidence_Code == "IEA" and r.DB_Type == "protein" and r.Assigned_By == "prot-retrieve"
        assert r.Qualifier == relation[r.NS] and r.Date == today and len(r.DB_Reference) == 1
        assert next(iter(r.DB_Reference)).startswith("prot-retrieve:") and r.GO_ID.startswith("GO:")
        assert r.With_From <= {"UniProtKB:P69905", "UniProtKB:Q9Y2X3"}
    # The mouse hemoglobin's closest reference protein is P69905, which carries GO:0000004 and its ancestors.
    supported = [r for r in rows if r.DB_ID == "P01942" and r.GO_ID in {"GO:0000004", "GO:0000002", "GO:0000003"}]
    assert supported and all(r.With_From == {"UniProtKB:P69905"} for r in supported)


@pytest.mark.parametrize("extra, message", [
    (("--db", "FlyBase"), "A0A024R161: GAF needs its taxon"),
    (("--taxon", "9606"), "FBpp0070000: GAF needs its database"),
])
def test_gaf_refuses_rather_than_inventing_a_column(gaf, extra, message):
    result, out = gaf(*extra)
    assert result.exit_code == 2 and message in result.output and not out.exists()
