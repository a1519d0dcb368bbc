"""The web app under load: concurrent clients on loopback, each submitting small jobs and polling
them; prints one table.

    python benchmarks/web_load.py [--clients 20] [--jobs 3] [--proteins 5] [--model DIR --index DIR]
                                  [--no-reference] [--timeout 1800]

Starts ``prot-retrieve serve`` (the shipped pipeline unless told otherwise) on a free port with a
new jobs folder, then: the seconds until the page answers; the 6 example proteins submitted alone,
until their results are ready, beside a fresh ``prot-retrieve annotate`` of them (warm cache);
then ``--clients`` threads each submit ``--jobs`` jobs of ``--proteins`` proteins drawn from the
CAFA3 targets (each job its own proteins) and poll each job's status every 0.5 s until it is done.
A job counts as mixed up when its TSV holds other proteins than its own. Status latencies are
the client-side times of the polls; memory is the server's resident set (RSS) sampled every
0.2 s: after loading, and its peak under load.
"""
from __future__ import annotations

import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import click
import httpx
import psutil

from machine import machine_line

ROOT = Path(__file__).resolve().parents[1]
CAFA3 = ROOT.parent / "shared" / "data" / "test_cafa3_benchmark" / "targets.fasta"
EXAMPLE = ROOT / "examples" / "proteins.fasta"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Memory(threading.Thread):
    """Samples the RSS of a process alone (``own``) and with its children (the search tool)."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.process, self.stop = psutil.Process(pid), False
        self.now = self.peak = self.own = self.own_peak = 0

    def run(self) -> None:
        while not self.stop:
            try:
                self.own = self.process.memory_info().rss
                self.now = self.own + sum(p.memory_info().rss for p in self.process.children(recursive=True))
            except psutil.Error:
                pass
            self.peak, self.own_peak = max(self.peak, self.now), max(self.own_peak, self.own)
            time.sleep(0.2)


def records(fasta: Path) -> list[tuple[str, str]]:
    from retrieval.io.fasta import read_fasta

    return [(r.id, r.sequence) for r in read_fasta(fasta)]


def wait_done(client: httpx.Client, job_id: str, latencies: list[float], timeout: float) -> dict:
    deadline = time.time() + timeout
    while True:
        start = time.perf_counter()
        job = client.get(f"/api/jobs/{job_id}").json()
        latencies.append(time.perf_counter() - start)
        if job["state"] in ("done", "failed") or time.time() > deadline:
            return job
        time.sleep(0.5)


@click.command()
@click.option("--clients", default=20, show_default=True)
@click.option("--jobs", "per_client", default=3, show_default=True, help="Jobs each client submits, one after another.")
@click.option("--proteins", default=5, show_default=True, help="Proteins per job.")
@click.option("--model", type=click.Path(exists=True, file_okay=False))
@click.option("--index", "index_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--no-reference", is_flag=True)
@click.option("--timeout", default=1800.0, show_default=True, help="Seconds a job may take before it counts as lost.")
def main(clients, per_client, proteins, model, index_dir, no_reference, timeout) -> None:
    port = free_port()
    rows = []
    with tempfile.TemporaryDirectory() as jobs:
        args = [sys.executable, "-m", "retrieval.cli", "serve", "--port", str(port), "--jobs-dir", jobs]
        args += [a for flag, value in (("--model", model), ("--index", index_dir)) if value for a in (flag, value)]
        args += ["--no-reference"] if no_reference else []
        start = time.perf_counter()
        server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        memory = Memory(server.pid)
        memory.start()
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        try:
            while True:
                try:
                    client.get("/")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            rows.append(("page answers after start", f"{time.perf_counter() - start:.2f} s"))
            t = time.perf_counter()
            job = client.post("/api/jobs", data={"fasta": EXAMPLE.read_text(), "top": "20"}).json()
            done = wait_done(client, job["id"], [], timeout)
            rows.append(("6 example proteins: submitted -> results ready (pipeline loading included)",
                         f"{time.perf_counter() - t:.2f} s ({done['state']})"))
            t = time.perf_counter()
            cli_args = [sys.executable, "-m", "retrieval.cli", "annotate", str(EXAMPLE), "--top", "20", "-o", "/dev/null"]
            subprocess.run(cli_args + ([a for f, v in (("--model", model), ("--index", index_dir)) if v for a in (f, v)])
                           + (["--no-reference"] if no_reference else []), check=True, capture_output=True)
            rows.append(("the same by a fresh `prot-retrieve annotate` (warm cache)", f"{time.perf_counter() - t:.2f} s"))
            loaded = memory.own
            pool = records(CAFA3 if CAFA3.is_file() else EXAMPLE)
            latencies: list[float] = []
            outcome = {"done": 0, "failed": 0, "lost": 0, "mixed": 0}
            lock = threading.Lock()

            def one_client(c: int) -> None:
                rng = random.Random(c)
                mine = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
                for j in range(per_client):
                    chosen = rng.sample(pool, min(proteins, len(pool)))
                    fasta = "".join(f">{pid}\n{seq}\n" for pid, seq in chosen)
                    submitted = mine.post("/api/jobs", data={"fasta": fasta, "top": "10"}).json()
                    job = wait_done(mine, submitted["id"], latencies, timeout)
                    kind = job["state"] if job["state"] in ("done", "failed") else "lost"
                    if kind == "done":
                        tsv = mine.get(f"/api/jobs/{submitted['id']}/results.tsv").text
                        seen = {line.split("\t")[0] for line in tsv.splitlines() if line and not line.startswith(
                            ("#", "protein_id"))}
                        if not seen <= {pid for pid, _ in chosen}:
                            kind = "mixed"
                    with lock:
                        outcome[kind] += 1

            t = time.perf_counter()
            threads = [threading.Thread(target=one_client, args=(c,)) for c in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            seconds = time.perf_counter() - t
        finally:
            memory.stop = True
            server.terminate()
            server.wait(timeout=60)
    total = clients * per_client
    quantiles = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else [0] * 19
    rows += [(f"{clients} clients x {per_client} jobs x {proteins} proteins", f"{seconds:.1f} s, {total} jobs"),
             ("jobs completed / failed / lost / mixed up",
              f"{outcome['done']} / {outcome['failed']} / {outcome['lost']} / {outcome['mixed']}"),
             ("status calls: count, p50, p95", f"{len(latencies)}, {1e3 * quantiles[9]:.1f} ms, {1e3 * quantiles[18]:.1f} ms"),
             ("server RSS: after loading / peak under load / peak with the search tool's processes",
              f"{loaded / 2**30:.2f} / {memory.own_peak / 2**30:.2f} / {memory.peak / 2**30:.2f} GB")]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        click.echo(f"{name:<{width}}  {value}")
    click.echo(machine_line())


if __name__ == "__main__":
    main()
