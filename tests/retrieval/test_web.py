"""The web app's API through the ASGI test client: the job life cycle, downloads equal to
`annotate`'s files, the GO graph against the ontology, search, catalogues, bad input (4xx with the
command line's message), limits, the token, and a restart in the middle of a job."""
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi", reason="the web app is an extra: pip install 'prot-retrieve[web]'")
from fastapi.testclient import TestClient  # noqa: E402

from retrieval.cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PROTEINS = {"P1": "MKVLAAGIVWACDEFGHIKLMNPQRSTVWY", "P2": "ACDEFGHIKLMNPQRSTVWYMKVLAAG", "P3": "MMMKKKVVVLLLAAGGWWW"}
FASTA = "".join(f">{k} OX=9606\n{v}\n" for k, v in PROTEINS.items())


def make_app(saved_pipeline, tmp_path, **options):
    from retrieval.pipeline import PipelineSpec
    from retrieval.web.app import create_app
    from retrieval.web.config import ServeConfig
    from retrieval.web.jobs import JobStore

    model, index = saved_pipeline
    config = ServeConfig(jobs_dir=str(tmp_path / "jobs"), **options)
    spec = PipelineSpec.of(str(model), str(index), None, None, None, False)
    store = JobStore(tmp_path / "jobs", spec.load, config.workers, config.search_block)
    return create_app(config, store), store


@pytest.fixture
def client(saved_pipeline, tmp_path):
    app, store = make_app(saved_pipeline, tmp_path, search_block=2, max_proteins=50)
    with TestClient(app) as client:
        client.store = store
        yield client


def wait(client, job_id, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def submit(client, fasta=FASTA, **options):
    response = client.post("/api/jobs", data={"fasta": fasta, **{k: str(v) for k, v in options.items()}})
    assert response.status_code == 201, response.text
    return response.json()


def test_a_job_from_submission_to_every_download(client, saved_pipeline, tmp_path):
    job = submit(client, top=4, name="mine", taxon="9606")
    assert job["state"] == "queued" and job["proteins"] == 3 and len(job["id"]) == 22
    done = wait(client, job["id"])
    assert done["state"] == "done" and done["done"] == 3, done
    page = client.get(f"/jobs/{job['id']}")
    assert page.status_code == 200 and job["id"] in page.text and "mine" in page.text
    model, index = saved_pipeline
    (tmp_path / "in.fa").write_text(FASTA)
    for fmt in ("tsv", "cafa", "jsonl", "gaf", "parquet"):
        expected = tmp_path / f"cli.{fmt}"
        ran = CliRunner().invoke(main, ["annotate", str(tmp_path / "in.fa"), "--model", str(model), "--index",
                                        str(index), "--top", "4", "--taxon", "9606", "--search-block", "2",
                                        "--format", fmt, "--db", "UniProtKB", "-o", str(expected)])
        assert ran.exit_code == 0, ran.output
        got = client.get(f"/api/jobs/{job['id']}/results.{fmt}", params={"db": "UniProtKB"})
        assert got.status_code == 200 and got.headers["content-disposition"].endswith(f'predictions.{fmt}"')
        assert got.content == expected.read_bytes(), fmt
    with_evidence = client.get(f"/api/jobs/{job['id']}/results.tsv", params={"explain": "true"}).text
    header = next(line for line in with_evidence.splitlines() if line.startswith("protein_id"))
    assert "support_protein" in header.split("\t") and "lent_from" in header.split("\t")


def test_proteins_predictions_and_the_go_graph(client, toy_ontology):
    job = submit(client, top=3)
    wait(client, job["id"])
    listed = client.get(f"/api/jobs/{job['id']}/proteins").json()
    assert [p["protein_id"] for p in listed] == list(PROTEINS) and all(p["predictions"] == 3 for p in listed)
    rows = client.get(f"/api/jobs/{job['id']}/predictions", params={"protein": "P2"}).json()
    assert len(rows) == 3 and {"term_id", "score", "tower", "prior", "lent_from"} <= set(rows[0])
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    graph = client.get(f"/api/jobs/{job['id']}/graph", params={"protein": "P2"}).json()
    # independent oracle: the predicted terms and every ancestor over is_a and part_of in the OBO
    expected = {r["term_id"] for r in rows}
    for term in list(expected):
        expected |= _ancestors(toy_ontology, term)
    assert {n["data"]["id"] for n in graph["nodes"]} == expected
    predicted = {r["term_id"]: r["score"] for r in rows}
    assert {n["data"]["id"]: n["data"]["score"] for n in graph["nodes"] if n["data"]["score"] is not None} == predicted
    for edge in graph["edges"]:
        assert edge["data"]["target"] in _ancestors(toy_ontology, edge["data"]["source"])
    assert client.get(f"/api/jobs/{job['id']}/predictions", params={"protein": "nope"}).status_code == 404


def _ancestors(ontology, term: str) -> set[str]:
    """Every ancestor of a term over is_a and part_of within its namespace, read off the OBO terms."""
    found, todo = set(), [term]
    while todo:
        current = ontology.terms[todo.pop()]
        for parent in current.is_a + current.part_of:
            if ontology.terms[parent].namespace == current.namespace and parent not in found:
                found.add(parent)
                todo.append(parent)
    return found


def test_text_search_and_your_own_catalogue(client, saved_pipeline):
    from retrieval.io.fasta import ProteinRecord
    from retrieval.models.retriever import RetrievalModel
    from retrieval.protein_index import ProteinIndex

    job = submit(client)
    wait(client, job["id"])
    found = client.post(f"/api/jobs/{job['id']}/search", json={"query": "kinase activity", "top": 3}).json()
    model = RetrievalModel.from_pretrained(saved_pipeline[0])
    oracle = ProteinIndex.build(model, [ProteinRecord(k, v) for k, v in PROTEINS.items()], progress=False).search(
        model, ["kinase activity"], top=3)
    assert [h["protein_id"] for h in found] == oracle["protein_id"].tolist()
    np.testing.assert_allclose([h["score"] for h in found], oracle["score"], atol=1e-6)
    catalogue = "term_id\tname\tdescription\taspect\nF1\tglows in the dark\t\t\nF2\tkinase activity\t\t\n"
    scored = client.post(f"/api/jobs/{job['id']}/catalogue", files={"file": ("f.tsv", catalogue)}).json()
    assert [f["term_id"] for f in scored["functions"]] == ["F1", "F2"] and scored["proteins"] == list(PROTEINS)
    from retrieval.annotate import Annotator

    direct = Annotator.from_pretrained(*saved_pipeline, reference=None).score(PROTEINS, ["glows in the dark",
                                                                                          "kinase activity"])
    np.testing.assert_allclose(scored["scores"], direct.to_numpy(), atol=1e-5)


def test_the_synchronous_call(client):
    rows = client.post("/api/annotate", json={"fasta": FASTA, "top": 2}).json()
    assert [r["protein_id"] for r in rows] == ["P1", "P1", "P2", "P2", "P3", "P3"]


@pytest.mark.parametrize("request_args, status, words", [
    ({"data": {"fasta": ">P1\nMK9V\n"}}, 400, "invalid residue '9' at position 3"),
    ({"data": {"fasta": ""}}, 400, "no sequences"),
    ({"data": {"fasta": ">P1\nMKV\n>P1\nMKV\n"}}, 400, "duplicate id 'P1'"),
    ({"data": {"fasta": FASTA, "top": "0"}}, 400, "--top must be at least 1"),
    ({"data": {"fasta": FASTA, "top": "many"}}, 400, "option top: 'many' is not a int"),
    ({"data": {"fasta": FASTA, "aspect": "XYZ"}}, 400, "--aspect must be one of"),
    ({"data": {"fasta": FASTA, "min_precision": "0.8"}}, 400, "no precision thresholds"),
    ({"data": {"fasta": FASTA, "taxon": "0"}}, 400, "--taxon"),
    ({"files": {"file": ("x.fa.gz", b"\x1f\x8b\x08\x00broken")}}, 400, "corrupt or truncated"),
    ({"files": {"file": ("x.fa", b"\xff\xd8\xff\xe0\x00binary")}}, 400, "not UTF-8"),
    ({"data": {"fasta": "".join(f">Q{i}\nMKV\n" for i in range(51))}}, 413, "more than 50 proteins"),
    ({"json": ["not", "an", "object"]}, 400, "must be an object"),
])
def test_bad_input_is_one_line_and_4xx(client, request_args, status, words):
    response = client.post("/api/jobs", **request_args)
    assert response.status_code == status and words in response.json()["error"], response.text
    assert "Traceback" not in response.text and "\n" not in response.json()["error"]
    assert not [p for p in client.store.folder.iterdir()]  # no job, no leftover


def test_unknown_jobs_and_paths_never_reach_the_filesystem(client):
    for job_id in ("nope", "..%2F..%2Fetc", "a" * 22, "../../../../etc/passwd"):
        response = client.get(f"/api/jobs/{job_id}")
        assert response.status_code == 404, job_id
    job = submit(client)
    wait(client, job["id"])
    assert client.get(f"/api/jobs/{job['id']}/results.exe").status_code == 404
    assert client.post(f"/api/jobs/{job['id']}/search", json={"query": "x", "top": 0}).status_code == 422
    assert client.post("/api/annotate", json={"top": 2}).status_code == 422


def test_limits_on_uploads_and_on_the_synchronous_call(saved_pipeline, tmp_path):
    app, _ = make_app(saved_pipeline, tmp_path, max_bytes=200, sync_proteins=2)
    with TestClient(app) as client:
        big = ">P1\n" + "A" * 500 + "\n"
        response = client.post("/api/jobs", files={"file": ("big.fa", big.encode())})
        assert response.status_code == 413 and "passes 200 bytes" in response.json()["error"]
        import gzip

        bomb = gzip.compress(b">P1\n" + b"A" * 10_000 + b"\n")
        assert len(bomb) < 200
        response = client.post("/api/jobs", files={"file": ("bomb.fa.gz", bomb)})
        assert response.status_code == 413 and "once uncompressed" in response.json()["error"]
        response = client.post("/api/annotate", json={"fasta": FASTA})
        assert response.status_code == 413 and "takes 2 at most" in response.json()["error"]


def test_the_token_guards_every_request_and_loopback_is_the_default(saved_pipeline, tmp_path):
    from index.errors import InputError
    from retrieval.web.config import ServeConfig

    with pytest.raises(InputError, match="--token"):
        ServeConfig(host="0.0.0.0").check()
    ServeConfig(host="0.0.0.0", token="s3cret").check()
    app, _ = make_app(saved_pipeline, tmp_path, token="s3cret")
    with TestClient(app) as client:
        assert client.get("/").status_code == 401 and client.get("/api/jobs/x").status_code == 401
        assert client.get("/", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        first = client.get("/?token=s3cret")
        assert first.status_code == 200 and client.get("/").status_code == 200  # the cookie it set


def test_user_text_is_escaped_in_the_page(client):
    job = submit(client, fasta=">P1 <script>alert(1)</script>\nMKV\n", name="<script>alert(2)</script>")
    page = client.get(f"/jobs/{job['id']}").text
    assert "<script>alert(2)</script>" not in page and "&lt;script&gt;alert(2)&lt;/script&gt;" in page


def test_old_jobs_expire(client):
    job = submit(client)
    wait(client, job["id"])
    state = client.store.folder / job["id"] / "job.json"
    record = json.loads(state.read_text())
    record["created"] -= 8 * 86400
    state.write_text(json.dumps(record))
    assert client.store.expire(7) == 1 and client.get(f"/api/jobs/{job['id']}").status_code == 404


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(saved_pipeline, jobs: Path, port: int, slow: bool = False) -> subprocess.Popen:
    """`prot-retrieve serve` in a subprocess (each block slowed down when ``slow``)."""
    model, index = saved_pipeline
    code = "from retrieval.cli import main; main()"
    if slow:
        code = ("import time, retrieval.runners.progress as p\nreal = p.Progress.add\n"
                "def add(self, *a):\n    real(self, *a)\n    time.sleep(0.7)\np.Progress.add = add\n" + code)
    return subprocess.Popen([sys.executable, "-c", code, "serve", "--model", str(model), "--index", str(index),
                             "--no-reference", "--port", str(port), "--jobs-dir", str(jobs), "--search-block", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _get(port, path, timeout=60):
    import httpx

    deadline = time.time() + timeout
    while True:
        try:
            return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)
        except httpx.TransportError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def test_a_job_survives_a_killed_server(saved_pipeline, tmp_path):
    """SIGKILL the server in the middle of a job; started again, it finishes the job, and the output
    equals an uninterrupted run's."""
    import httpx

    jobs, port = tmp_path / "jobs", _free_port()
    fasta = "".join(f">R{i}\n{PROTEINS['P1'][i:]}{PROTEINS['P2']}\n" for i in range(8))
    server = serve(saved_pipeline, jobs, port, slow=True)
    try:
        assert _get(port, "/").status_code == 200
        job = httpx.post(f"http://127.0.0.1:{port}/api/jobs", data={"fasta": fasta, "top": "3"}).json()
        deadline = time.time() + 120
        while _get(port, f"/api/jobs/{job['id']}").json()["done"] < 3 and time.time() < deadline:
            time.sleep(0.1)
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=30)
    assert json.loads((jobs / job["id"] / "job.json").read_text())["state"] == "running"
    server = serve(saved_pipeline, jobs, port)
    try:
        deadline = time.time() + 120
        while _get(port, f"/api/jobs/{job['id']}").json()["state"] != "done" and time.time() < deadline:
            time.sleep(0.2)
        resumed = _get(port, f"/api/jobs/{job['id']}/results.tsv").content
        again = httpx.post(f"http://127.0.0.1:{port}/api/jobs", data={"fasta": fasta, "top": "3"}).json()
        while _get(port, f"/api/jobs/{again['id']}").json()["state"] != "done" and time.time() < deadline:
            time.sleep(0.2)
        assert resumed == _get(port, f"/api/jobs/{again['id']}/results.tsv").content
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def test_serve_refuses_an_address_it_cannot_listen_on_in_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", "--port", str(port), "--jobs-dir", str(tmp_path / "j")])
    assert result.exit_code == 2 and "cannot listen there" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["serve", "--port", "70000"])
    assert result.exit_code == 2 and "--port must be 1-65535" in result.output
    (tmp_path / "file").write_text("x")
    result = CliRunner().invoke(main, ["serve", "--port", str(_free_port()), "--jobs-dir", str(tmp_path / "file")])
    assert result.exit_code == 2 and "cannot keep jobs here" in result.output


def test_a_pipeline_that_does_not_load_fails_each_job_with_the_reason(tmp_path):
    from index.errors import InputError
    from retrieval.web.app import create_app
    from retrieval.web.config import ServeConfig
    from retrieval.web.jobs import JobStore

    def broken():
        raise InputError("/nowhere: not a prot-retrieve model folder")

    store = JobStore(tmp_path / "jobs", broken)
    with TestClient(create_app(ServeConfig(), store)) as client:
        job = submit(client)
        done = wait(client, job["id"])
        assert done["state"] == "failed" and "not a prot-retrieve model folder" in done["error"]
        response = client.post("/api/annotate", json={"fasta": FASTA})
        assert response.status_code == 503 and "not loaded" in response.json()["error"]
