"""Throughput and peak memory of ``prot-retrieve annotate`` as the proteome grows; prints one table.

    python benchmarks/scale.py [--data ../shared/data] [--sizes 1000,10000,100000]
                               [--mode two-tower|hybrid ...] [--engine local|ray-1|ray-2 ...] [--seed 0]

Proteomes of each size are sampled with replacement, with a fixed seed, from the sequences in
``../shared/data`` (training proteins and CAFA3 targets), renamed S0000001... so ids stay unique.
Each run is a fresh ``annotate -o FILE`` process writing a TSV, on the local engine (blocks of 4,096
proteins) or on Ray with N workers of one CPU each (blocks of 1,024; Ray started for the run). Peak
memory is the largest sum of resident memory over the run's process tree (the command, its search
tool, and for Ray its daemons and workers), sampled every 0.2 s. For the hybrid the homology
search's share of the time is the sum of the search's own timings (its log lines) over the wall
time, on the local engine (Ray workers log elsewhere). The protein
embedding cache is off (sampling with replacement repeats sequences, which it would skip). Needs psutil.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
import psutil

from machine import machine_line

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"


def sample_proteome(data: Path, n: int, seed: int, out: Path) -> None:
    from retrieval.io.fasta import read_fasta

    pool = [r.sequence for f in (data / "train_goa2019exp_7sp" / "sequences.fasta.gz",
                                 data / "test_cafa3_benchmark" / "targets.fasta") for r in read_fasta(f)]
    picks = np.random.default_rng(seed).integers(0, len(pool), size=n)
    with open(out, "w") as fh:
        fh.writelines(f">S{i + 1:07d}\n{pool[p]}\n" for i, p in enumerate(picks))


def run(fasta: Path, mode: str, engine: str, out: Path, precision: str) -> dict:
    args = [sys.executable, "-c", "from retrieval.cli import main; main()", "-v", "annotate", str(fasta), "--top", "20", "-o", str(out),
            "--precision", precision, "--no-embedding-cache"]  # duplicates of the sampling would skip the tower
    if mode == "two-tower":
        args.append("--no-reference")
    if engine != "local":
        args += ["--engine", "ray", "--workers", engine.split("-")[1], "--worker-cpus", "1"]
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log, text=True, cwd=ROOT)
        root, peak = psutil.Process(process.pid), 0
        while process.poll() is None:
            peak = max(peak, _tree_rss(root))
            time.sleep(0.2)
        seconds = time.perf_counter() - start
        log.seek(0)
        stderr = log.read()
    if process.returncode:
        raise SystemExit(stderr[-2000:])
    search = sum(float(s) for s in re.findall(r": \d+ queries, \d+ hits in ([\d.]+) s", stderr))
    return {"seconds": seconds, "peak_gb": peak / 2**30, "search_s": search}


def _tree_rss(root) -> int:
    total = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.Error:  # ended between the listing and the reading
            pass
    return total


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=str(DEFAULT_DATA), show_default=True)
@click.option("--sizes", default="1000,10000,100000", show_default=True, help="Proteome sizes, comma-separated.")
@click.option("--mode", "modes", multiple=True, type=click.Choice(["two-tower", "hybrid"]),
              help="Pipelines to time (default: both).")
@click.option("--engine", "engines", multiple=True, type=click.Choice(["local", "ray-1", "ray-2"]),
              help="Engines to time (default: local).")
@click.option("--seed", default=0, show_default=True)
@click.option("--precision", default="auto", show_default=True, help="annotate --precision.")
def main(data: str, sizes: str, modes: tuple[str, ...], engines: tuple[str, ...], seed: int, precision: str) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in sizes.split(",")):
            fasta = Path(tmp) / f"proteome_{n}.fasta"
            sample_proteome(Path(data), n, seed, fasta)
            for mode in modes or ("two-tower", "hybrid"):
                for engine in engines or ("local",):
                    found = run(fasta, mode, engine, Path(tmp) / "out.tsv", precision)
                    # Ray workers log elsewhere: the share is measured on the local engine only
                    share = f"{100 * found['search_s'] / found['seconds']:.0f} %" \
                        if mode == "hybrid" and engine == "local" else ""
                    rows.append((n, mode, engine, found["seconds"], n / found["seconds"], found["peak_gb"], share))
                    click.echo(f"{n} {mode} {engine}: {found['seconds']:.1f} s, {found['peak_gb']:.2f} GB", err=True)
                    os.remove(Path(tmp) / "out.tsv")
    click.echo("| proteins | pipeline | engine | seconds | proteins/s | peak RSS (GB) | homology search share |")
    click.echo("|---|---|---|---|---|---|---|")
    for n, mode, engine, seconds, rate, peak, share in rows:
        click.echo(f"| {n:,} | {mode} | {engine} | {seconds:.1f} | {rate:.1f} | {peak:.2f} | {share} |")
    click.echo(machine_line(precision))


if __name__ == "__main__":
    main()
