"""The Ray engine: the local engine's output from a pool of actors; a dead worker, a bad address.

Each test that runs Ray starts it on this machine (two CPUs) and stops it afterwards.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

ray = pytest.importorskip("ray", reason="the Ray engine is an extra: pip install 'prot-retrieve[ray]'")

ROOT = Path(__file__).resolve().parents[2]
PROTEINS = {f"P{i}": seq for i, seq in enumerate([
    "MKVLAAGIVWACDEFGHIK", "ACDEFGHIKLMNPQRSTVWY", "MMMKKKVVVLLLAAGG", "MSTNPKPQRKTKRNTNRRPQDVKFPGG",
    "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSLAKWKRQTLGQHDFSAGEGLYTHMK",
    "MSDNGPQNQRNAPRITFGGPSDSTGSNQNGERSGARSKQRRPQGLPNNTASWFTALTQHGKEDLKFPRGQGVPINTNSSPDDQIGYYRRAT",
    "GGGGSGGGGSGGGGS"])}


@pytest.fixture
def pipeline(tmp_path, saved_pipeline, toy_ontology):
    """A saved tiny model, its index of the toy ontology, a reference searched with MMseqs2, a FASTA."""
    from index.propagation import Propagator
    from retrieval.homology import Reference
    from retrieval.homology.search import find_mmseqs
    from retrieval.io.fasta import ProteinRecord

    records = [ProteinRecord(f"R{i}", PROTEINS[p][2:]) for i, p in enumerate(["P4", "P5", "P0"])]
    annotations = pd.DataFrame({"protein": ["R0", "R1", "R2"], "term": ["GO:0000004", "GO:0000003", "GO:0000011"]})
    Reference.build(records, annotations, toy_ontology, Propagator.from_ontology(toy_ontology), tmp_path / "ref")
    (tmp_path / "in.fa").write_text("".join(f">{k} OX=9606\n{v}\n" for k, v in PROTEINS.items()))
    search = "mmseqs" if find_mmseqs(required=False) else "embedding"
    args = ["annotate", str(tmp_path / "in.fa"), "--model", str(tmp_path / "model"), "--index", str(tmp_path / "index"),
            "--reference", str(tmp_path / "ref"), "--search", search, "--top", "5", "--explain"]
    return tmp_path, args


@pytest.fixture
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", comment="#", keep_default_na=False)


def test_ray_output_equals_the_local_engine(pipeline, local_ray):
    from retrieval.cli import main

    tmp_path, args = pipeline
    local = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "local.tsv")])
    assert local.exit_code == 0, local.output
    distributed = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "ray.tsv"), "--engine", "ray", "--workers",
                                            "2", "--worker-block", "2"])
    assert distributed.exit_code == 0, distributed.output
    expected, found = read(tmp_path / "local.tsv"), read(tmp_path / "ray.tsv")
    assert len(found) > len(PROTEINS) and set(found["protein_id"]) == set(PROTEINS)
    text = [c for c in expected.columns if not pd.api.types.is_numeric_dtype(expected[c])]
    pd.testing.assert_frame_equal(found[text], expected[text])  # same proteins, terms, order, support
    numbers = [c for c in expected.columns if c not in text]
    assert (found[numbers] - expected[numbers]).abs().max().max() <= 1e-6
    assert ray.is_initialized()  # a Ray the caller started is left running


def test_a_worker_loading_another_model_is_refused(pipeline, local_ray, tiny_model):
    from retrieval.annotate import Annotator
    from retrieval.config import AnnotateConfig, RayConfig
    from index.errors import InputError
    from retrieval.runners.local import Block
    from retrieval.runners.ray import RayEngine

    tmp_path, _ = pipeline
    annotator = Annotator.from_pretrained(tmp_path / "model", tmp_path / "index", reference=None)
    claimed = {"model": "0123456789abcdef"}  # as if the driver had loaded another model
    engine = RayEngine(RayConfig(workers=1, worker_block=4))
    with pytest.raises(InputError, match="loaded another pipeline.*model"):
        list(engine.run(annotator, [Block(_records())], AnnotateConfig(), claimed))


def _records():
    from retrieval.io.fasta import ProteinRecord

    return [ProteinRecord(k, v) for k, v in PROTEINS.items()]


def run_and_kill_the_worker(tmp_path, args, out: Path, restarts: int) -> subprocess.CompletedProcess:
    """Annotate on one slow Ray worker in a subprocess; SIGKILL the worker after its first block."""
    script = tmp_path / "slow_worker.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        import retrieval.runners.ray as engine

        class Slow(engine._Worker):  # defined in __main__, so Ray ships this class to the worker
            def __init__(self):
                super().__init__()
                open({str(tmp_path / "worker.pid")!r}, "w").write(str(os.getpid()))

            def __call__(self, batch):
                out = super().__call__(batch)
                time.sleep(1.5)
                return out

        engine._Worker = Slow
        from retrieval.cli import main
        main()
    """))
    process = subprocess.Popen([sys.executable, str(script), *args, "-o", str(out), "--engine", "ray", "--workers",
                                "1", "--worker-block", "2", "--worker-restarts", str(restarts)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    manifest = Path(f"{out}.partial") / "manifest.json"

    def finished() -> int:  # blocks on disk
        try:
            return len(json.loads(manifest.read_text())["parts"])
        except (OSError, ValueError):
            return 0

    deadline = time.time() + 180
    while not finished() and time.time() < deadline and process.poll() is None:
        time.sleep(0.1)
    assert finished(), process.communicate()[1][-3000:]
    killed = int((tmp_path / "worker.pid").read_text())
    os.kill(killed, signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=180)
    if restarts:  # a new worker took over
        assert int((tmp_path / "worker.pid").read_text()) != killed
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_a_killed_worker_fails_the_run_in_one_line_and_resume_finishes_it(pipeline):
    """No restarts: no output, the finished block kept, and --resume (here on the local engine)
    completes the output of an uninterrupted run."""
    from retrieval.cli import main

    tmp_path, args = pipeline
    assert CliRunner().invoke(main, [*args, "-o", str(tmp_path / "whole.tsv")]).exit_code == 0
    out = tmp_path / "out.tsv"
    done = run_and_kill_the_worker(tmp_path, args, out, restarts=0)
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert done.returncode == 1 and len(errors) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "a Ray worker failed" in errors[0] and "--resume" in errors[0]
    assert not out.exists()  # nothing that looks complete
    resumed = CliRunner().invoke(main, [*args, "-o", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "of them done before" in resumed.output
    assert out.read_text() == (tmp_path / "whole.tsv").read_text()


def test_a_killed_worker_is_replaced_and_its_block_retried(pipeline):
    from retrieval.cli import main

    tmp_path, args = pipeline
    assert CliRunner().invoke(main, [*args, "-o", str(tmp_path / "whole.tsv")]).exit_code == 0
    done = run_and_kill_the_worker(tmp_path, args, tmp_path / "out.tsv", restarts=1)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "out.tsv").read_text() == (tmp_path / "whole.tsv").read_text()


def test_an_address_where_no_ray_answers_is_one_line(pipeline):
    from retrieval.cli import main

    tmp_path, args = pipeline
    for address, message in [("127.0.0.1:9", "no Ray cluster answers there"), ("nonsense", "expected host:port")]:
        start = time.perf_counter()
        result = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "out.tsv"), "--engine", "ray",
                                           "--address", address])
        assert result.exit_code == 2 and message in result.output, result.output
        assert [line.startswith("Error:") for line in result.output.splitlines()].count(True) == 1
        assert "Traceback" not in result.output and time.perf_counter() - start < 30
        assert not ray.is_initialized() and not (tmp_path / "out.tsv").exists()


def test_workers_never_exceed_what_the_cluster_holds(monkeypatch, caplog):
    from index.errors import InputError
    from retrieval.config import RayConfig
    from retrieval.runners.ray import _workers

    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 8.0, "GPU": 2.0})
    assert _workers(RayConfig()) == 8 and _workers(RayConfig(worker_cpus=3)) == 2
    assert _workers(RayConfig(worker_gpus=1)) == 2 and _workers(RayConfig(worker_gpus=0.5)) == 4
    assert _workers(RayConfig(workers=3)) == 3 and "holds" not in caplog.text
    assert _workers(RayConfig(workers=20)) == 8 and "holds 8 such workers" in caplog.text
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 8.0})
    with pytest.raises(InputError, match="no room for a worker of 1 CPUs and 1 GPUs"):
        _workers(RayConfig(worker_gpus=1))


def test_blocks_fill_every_worker_and_keep_each_protein_once_in_order(local_ray):
    from retrieval.models.batching import blocks
    from retrieval.runners.local import Block
    from retrieval.runners.ray import _put_blocks

    for block, workers, sizes in [(1024, 2, [4, 3]), (2, 2, [2, 2, 2, 1]), (3, 1, [3, 3, 1]), (5, 3, [3, 3, 1])]:
        cut = [Block(b, f"read through {b[-1].id}") for b in blocks(_records(), block)]
        refs, found = _put_blocks(iter(cut), workers)
        assert [len(b.records) for b in found] == sizes and all(not r.sequence for b in found for r in b.records)
        # where the cut stands, the input's digest stands; where it was split evenly, only the end knows it
        split = len(found) != len(cut)
        assert [b.input_sha256 for b in found] == ([None] * (len(found) - 1) + [cut[-1].input_sha256] if split
                                                   else [c.input_sha256 for c in cut])
        tables = [ray.get(r).to_pandas() for r in refs]
        assert [t["block"].unique().tolist() for t in tables] == [[i] for i in range(len(sizes))]
        assert pd.concat(tables)["id"].tolist() == list(PROTEINS)
        assert all(t["position"].tolist() == list(range(len(t))) for t in tables)
    assert _put_blocks(iter([]), 2) == ([], [])


def test_the_worker_without_ray_groups_its_rows_by_block_and_falls_back_to_cpu(pipeline, caplog):
    """A worker called directly: a GPU asked for where torch sees none leaves the tower on CPU with a
    warning; a batch holding two blocks gives one pickled table per block, in position order."""
    import pickle

    import torch

    from retrieval.annotate import Annotator
    from retrieval.config import AnnotateConfig
    from retrieval.runners.ray import _Worker
    from retrieval.runners.local import provenance

    tmp_path, _ = pipeline
    annotator = Annotator.from_pretrained(tmp_path / "model", tmp_path / "index", reference=None)
    worker = type("W", (_Worker,), {"setup": {"spec": annotator.spec, "config": AnnotateConfig(top=3),
                                              "expected": provenance(annotator), "cpus": 1, "gpus": 1.0}})()
    if not torch.cuda.is_available():
        assert "torch sees none" in caplog.text
        assert next(worker.annotator.model.protein_encoder.parameters()).device.type == "cpu"
    records = _records()
    batch = pd.DataFrame({"block": [0, 0, 1, 1, 1], "position": [1, 0, 0, 1, 2],
                          "id": [records[1].id, records[0].id, *(r.id for r in records[2:5])],
                          "sequence": [records[1].sequence, records[0].sequence, *(r.sequence for r in records[2:5])],
                          "description": "", "tags": "{}", "db": "", "entry_name": ""})
    out = worker(batch)
    assert out[["block", "start", "proteins"]].values.tolist() == [[0, 0, 2], [1, 0, 3]]
    first = pickle.loads(out["table"].iloc[0])
    assert first["protein_id"].drop_duplicates().tolist() == [records[0].id, records[1].id]
    expected = annotator.annotate(records[:2], AnnotateConfig(top=3))
    pd.testing.assert_frame_equal(first, expected)
