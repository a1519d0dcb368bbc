"""Nothing lost, ever: folders the tool writes, the cache, the environment, damaged artefacts and
pipes. Every case ends with the right output, or one line ``Error: ...`` and exit code 2, and
nothing the tool did not make is deleted. Grouped by mechanism; locking and resuming are in
test_resume.py."""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from retrieval.cli import main
from test_resume import stopped_after_parts

ROOT = Path(__file__).resolve().parents[2]
SEQ = "MKVLAAGIVWACDEFGHIKLMNPQRSTVWY"


def run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def one_line_error(result, *words):
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    assert all(w in lines[0] for w in words), lines[0]


@pytest.fixture
def files(tmp_path, toy_obo, saved_pipeline):
    model, index = saved_pipeline
    (tmp_path / "in.fa").write_text(f">P1 OX=9606\n{SEQ}\n>P2\n{SEQ[::-1]}\n")
    (tmp_path / "ann.tsv").write_text("EntryID\tterm\nP1\tGO:0000004\nP2\tGO:0000011\n")
    (tmp_path / "functions.tsv").write_text("term_id\tname\tdescription\taspect\nF1\tbinds heme\tcarries oxygen\t\n")
    return tmp_path, ["--model", str(model), "--index", str(index)]


# --- folder ownership ---------------------------------------------------------------------------
def _build(kind, tmp_path, model_args, out, *extra):
    model = model_args[1]
    if kind == "build-index":
        return run("build-index", tmp_path / "functions.tsv", "-o", out, "--model", model, *extra)
    if kind == "build-reference":
        return run("build-reference", tmp_path / "in.fa", tmp_path / "ann.tsv", "--obo", ROOT / "tests/data/toy.obo",
                   "-o", out, *extra)
    return run("build-protein-index", tmp_path / "in.fa", "-o", out, "--model", model, "--no-reference", *extra)


@pytest.mark.parametrize("kind", ["build-index", "build-reference", "build-protein-index"])
def test_a_folder_of_other_files_is_never_replaced_without_overwrite(files, kind):
    tmp_path, model_args = files
    out = tmp_path / "d"
    out.mkdir()
    (out / "notes").write_text("k")
    one_line_error(_build(kind, tmp_path, model_args, out), "did not write", "--overwrite")
    assert (out / "notes").read_text() == "k"
    assert _build(kind, tmp_path, model_args, out, "--overwrite").exit_code == 0 and not (out / "notes").exists()
    built = sorted(p.name for p in out.iterdir())
    assert _build(kind, tmp_path, model_args, out).exit_code == 0  # its own folder: rebuilt in place
    assert sorted(p.name for p in out.iterdir()) == built
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _build(kind, tmp_path, model_args, empty).exit_code == 0  # an empty folder holds nothing to lose


# --- the cache ------------------------------------------------------------------------------------
def test_cache_clear_removes_only_what_it_made(tmp_path):
    cache = tmp_path / "c"
    (cache / "p").mkdir(parents=True)
    (cache / "p" / "t").write_text("k")
    (cache / "mine.txt").write_text("k")
    (cache / "lenders").mkdir()
    (cache / "lenders" / "x.npz").write_bytes(b"made by prot-retrieve")
    listed = run("cache", env={"PROT_RETRIEVE_CACHE": str(cache)})
    assert listed.exit_code == 0 and "not prot-retrieve's" in listed.output
    result = run("cache", "--clear", env={"PROT_RETRIEVE_CACHE": str(cache)})
    assert result.exit_code == 0 and "removed" in result.output, result.output
    assert (cache / "p" / "t").read_text() == "k" and (cache / "mine.txt").read_text() == "k"
    assert not (cache / "lenders" / "x.npz").exists()


def test_cache_clear_waits_for_no_running_process(files):
    """While an annotate runs, clearing the cache is refused and removes nothing; the run finishes."""
    tmp_path, model_args = files
    cache = tmp_path / "cache"
    env = {**os.environ, "PROT_RETRIEVE_CACHE": str(cache)}
    process = stopped_after_parts(tmp_path, ["annotate", str(tmp_path / "in.fa"), *model_args, "--search-block", "1",
                                             "-o", str(tmp_path / "out.tsv")], parts=1, pause=3, env=env)
    before = sorted(str(p) for p in cache.rglob("*"))
    result = run("cache", "--clear", env={"PROT_RETRIEVE_CACHE": str(cache)})
    one_line_error(result, "another prot-retrieve process is using the cache")
    assert sorted(str(p) for p in cache.rglob("*")) == before
    assert process.wait(timeout=120) == 0, process.stderr.read()
    assert (tmp_path / "out.tsv").is_file()
    assert run("cache", "--clear", env={"PROT_RETRIEVE_CACHE": str(cache)}).exit_code == 0  # now it may


# --- the environment ----------------------------------------------------------------------------
def test_the_environment_fails_in_one_line(files, tmp_path):
    tmp_path, model_args = files
    (tmp_path / "f").write_text("x")
    one_line_error(run("cache", env={"PROT_RETRIEVE_CACHE": str(tmp_path / "f")}), "is not a folder")
    one_line_error(run("annotate", tmp_path / "in.fa", *model_args, env={"PROT_RETRIEVE_CACHE": str(tmp_path / "f")}),
                   "is not a folder")
    if Path("/dev/full").exists():
        one_line_error(run("annotate", tmp_path / "in.fa", *model_args, "-o", "/dev/full"), "/dev/full",
                       "No space left on device")
    (tmp_path / "o.tsv.partial").write_text("a file")
    one_line_error(run("annotate", tmp_path / "in.fa", *model_args, "-o", tmp_path / "o.tsv"), "not a progress folder")
    one_line_error(run("train-reranker", "--model", model_args[1], "--reference", tmp_path, "-o", tmp_path / "f"),
                   "exists and is not a folder")
    one_line_error(run("annotate", tmp_path / "in.fa", *model_args, "--taxon", "0"), "--taxon")
    (tmp_path / "ox.fa").write_text(f">P1 OX=abc\n{SEQ}\n")
    one_line_error(run("annotate", tmp_path / "ox.fa", *model_args), "OX=abc is not an NCBI taxon id")


def test_training_data_is_found_by_data_not_by_the_current_folder(tiny_model, tmp_path, monkeypatch):
    from index.errors import InputError
    from train.config import TrainConfig

    data = tmp_path / "elsewhere" / "data"
    (data / "set").mkdir(parents=True)
    for name in ("seqs.fa", "ann.tsv", "go.obo"):
        (data / "set" / name).write_text("x")
    info = {"train_config": {"fasta": "../shared/data/set/seqs.fa", "annotations": "../shared/data/set/ann.tsv",
                             "obo": "../shared/data/set/go.obo"}}
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="give --data"):
        TrainConfig.recorded(info)
    found = TrainConfig.recorded(info, data)
    assert (found.fasta, found.obo) == (str(data / "set" / "seqs.fa"), str(data / "set" / "go.obo"))


# --- damaged artefacts --------------------------------------------------------------------------
def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_damaged_artefacts_fail_in_one_line(files, tmp_path):
    import shutil

    tmp_path, model_args = files
    assert run("build-reference", tmp_path / "in.fa", tmp_path / "ann.tsv", "--obo", ROOT / "tests/data/toy.obo",
               "-o", tmp_path / "ref").exit_code == 0
    _truncate(tmp_path / "ref" / "labels.npz")
    one_line_error(run("annotate", tmp_path / "in.fa", *model_args, "--reference", tmp_path / "ref", "--force"),
                   "labels.npz", "corrupt")
    model = tmp_path / "model_copy"
    shutil.copytree(model_args[1], model)
    _truncate(model / "reranker" / "model.safetensors")
    one_line_error(run("annotate", tmp_path / "in.fa", "--model", model, "--index", model_args[3]),
                   "unreadable model files")


def test_a_damaged_feature_cache_is_computed_again(tiny_model, tmp_path, caplog):
    text = tiny_model.text_encoder
    first = text.backbone_features(["binds heme"], precision="fp32", cache_dir=tmp_path)
    (cache_file,) = tmp_path.glob("*.npz")
    _truncate(cache_file)
    again = text.backbone_features(["binds heme"], precision="fp32", cache_dir=tmp_path)
    np.testing.assert_allclose(again, first) and "corrupt cache file ignored" in caplog.text


def test_a_damaged_protein_index_profile_fails_in_one_line(files):
    tmp_path, model_args = files
    folder = tmp_path / "p"
    assert run("build-protein-index", tmp_path / "in.fa", "-o", folder, "--model", model_args[1],
               "--no-reference").exit_code == 0
    config = json.loads((folder / "index_config.json").read_text())
    config["homology"] = {"profile_sha256": "0"}
    (folder / "index_config.json").write_text(json.dumps(config))
    (folder / "profile.npz").write_bytes(b"PK\x03\x04 not a zip")
    one_line_error(run("search", folder, "binds heme", "--model", model_args[1]), "profile.npz", "missing or corrupt")


def test_selftest_checks_its_golden_file(tmp_path, monkeypatch):
    from index.errors import InputError
    from retrieval import selftest

    golden = tmp_path / "golden.tsv"
    golden.write_bytes(selftest.GOLDEN.read_bytes()[:1500])
    monkeypatch.setattr(selftest, "GOLDEN", golden)
    with pytest.raises(InputError, match="damaged"):
        selftest.read_golden()
    golden.write_bytes(b"")
    with pytest.raises(InputError, match="damaged"):
        selftest.read_golden()
    monkeypatch.setattr(selftest, "GOLDEN_DIGEST", tmp_path / "missing.json")
    with pytest.raises(InputError, match="cannot read the golden file"):
        selftest.read_golden()


# --- pipes and standard input -------------------------------------------------------------------
def test_fasta_from_a_pipe_or_standard_input_reads_like_a_file(files):
    tmp_path, model_args = files
    expected = run("annotate", tmp_path / "in.fa", *model_args, "--top", "3")
    assert expected.exit_code == 0
    fifo = tmp_path / "pipe.fa"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"cat {tmp_path / 'in.fa'} > {fifo}"])
    piped = run("annotate", fifo, *model_args, "--top", "3")
    writer.wait(timeout=30)
    assert piped.exit_code == 0 and piped.stdout == expected.stdout
    stdin = CliRunner().invoke(main, ["annotate", "-", *model_args, "--top", "3"],
                               input=(tmp_path / "in.fa").read_text())
    assert stdin.exit_code == 0 and stdin.stdout == expected.stdout
    out = tmp_path / "from_stdin.tsv"  # with -o too: resumable progress needs no second read
    to_file = CliRunner().invoke(main, ["annotate", "-", *model_args, "--top", "3", "-o", str(out)],
                                 input=(tmp_path / "in.fa").read_text())
    assert to_file.exit_code == 0 and out.read_text() == expected.stdout


# --- smaller input defects ----------------------------------------------------------------------
def test_smaller_input_defects(files, tmp_path):
    tmp_path, model_args = files
    (tmp_path / "bom.fa").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "in.fa").read_bytes())
    assert run("annotate", tmp_path / "bom.fa", *model_args, "--top", "1").exit_code == 0
    quoted = tmp_path / "quoted.fa"
    quoted.write_text(f'>"q""uote"\n{SEQ}\n')
    out = tmp_path / "q.tsv"
    assert run("annotate", quoted, *model_args, "--top", "2", "-o", out).exit_code == 0
    rows = [line.split("\t") for line in out.read_text().splitlines() if not line.startswith(("#", "protein_id"))]
    assert {r[0] for r in rows} == {'"q""uote"'}
    cafa = tmp_path / "q.cafa"
    assert run("annotate", quoted, *model_args, "--format", "cafa", "-o", cafa).exit_code == 0
    from retrieval.io.tables import read_predictions

    assert set(read_predictions(cafa)["protein"]) == set(read_predictions(out)["protein"]) == {'"q""uote"'}
    for text, words in [("F1\tglows\tit glows\tXYZ\n", ["aspect 'XYZ'"]), ("F1 \tglows\tit glows\tMFO\n", ["spaces"])]:
        (tmp_path / "f.tsv").write_text("term_id\tname\tdescription\taspect\n" + text)
        one_line_error(run("build-index", tmp_path / "f.tsv", "-o", tmp_path / "i", "--model", model_args[1]), *words)
    (tmp_path / "three.tsv").write_text("term_id\tname\n" + "".join(f"F{i}\tf{i}\n" for i in range(3)))
    one_line_error(run("build-index", tmp_path / "three.tsv", "-o", tmp_path / "i", "--model", model_args[1],
                       "--factory", "IVF1024,Flat"), "1024 clusters need at least as many vectors")
    assert run("build-reference", tmp_path / "in.fa", tmp_path / "ann.tsv", "--obo", ROOT / "tests/data/toy.obo",
               "-o", tmp_path / "ref").exit_code == 0
    one_line_error(run("transfer", tmp_path / "in.fa", "--reference", tmp_path / "ref", "--search", "diamond",
                       "--search-tool", tmp_path / "no-diamond"), "DIAMOND not found", "--search-tool")


def test_a_damaged_cached_go_index_is_built_again(tmp_path, monkeypatch):
    from retrieval.indexing import default_index
    from retrieval.models.retriever import RetrievalModel

    monkeypatch.setenv("PROT_RETRIEVE_CACHE", str(tmp_path))
    model = RetrievalModel.from_pretrained(None)
    first = default_index(model)
    (folder,) = tmp_path.glob("go-index-*")
    _truncate(folder / "index.faiss")
    again = default_index(model)
    assert again.content_digest() == first.content_digest() and again.index.ntotal == first.index.ntotal
