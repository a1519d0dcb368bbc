"""Throughput and peak memory of ``prot-retrieve annotate`` as the proteome grows; prints one table.

    python benchmarks/scale.py [--data ../shared/data] [--sizes 1000,10000,100000]
                               [--mode two-tower|hybrid ...] [--seed 0]

Proteomes of each size are sampled with replacement, with a fixed seed, from the sequences in
``../shared/data`` (training proteins and CAFA3 targets), renamed S0000001... so ids stay unique.
Each run is a fresh process writing a TSV (the local engine, blocks of 4,096 proteins, progress kept
for --resume); its peak resident memory is the larger of its own maximum RSS and its search tool's. For the hybrid the homology search's
share of the wall time comes from the search's log lines.
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

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
CHILD = """
import resource, sys
from train.cli import main
sys.argv = ["prot-retrieve", *sys.argv[1:]]
try:
    main()
except SystemExit as exit:
    code = exit.code
peak = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
print(f"PEAK_KB {peak}", file=sys.stderr)
sys.exit(code)
"""


def sample_proteome(data: Path, n: int, seed: int, out: Path) -> None:
    from retrieval.io.fasta import read_fasta

    pool = [r.sequence for f in (data / "train_goa2019exp_7sp" / "sequences.fasta.gz",
                                 data / "test_cafa3_benchmark" / "targets.fasta") for r in read_fasta(f)]
    picks = np.random.default_rng(seed).integers(0, len(pool), size=n)
    with open(out, "w") as fh:
        fh.writelines(f">S{i + 1:07d}\n{pool[p]}\n" for i, p in enumerate(picks))


def run(fasta: Path, mode: str, out: Path) -> dict:
    args = ["-v", "annotate", str(fasta), "--top", "20", "-o", str(out)]
    if mode == "two-tower":
        args.append("--no-reference")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    peak = int(re.search(r"PEAK_KB (\d+)", done.stderr).group(1)) / 2**20
    search = sum(float(s) for s in re.findall(r": \d+ queries, \d+ hits in ([\d.]+) s", done.stderr))
    return {"seconds": seconds, "peak_gb": peak, "search_s": search}


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=str(DEFAULT_DATA), show_default=True)
@click.option("--sizes", default="1000,10000,100000", show_default=True, help="Proteome sizes, comma-separated.")
@click.option("--mode", "modes", multiple=True, type=click.Choice(["two-tower", "hybrid"]),
              help="Pipelines to time (default: both).")
@click.option("--seed", default=0, show_default=True)
def main(data: str, sizes: str, modes: tuple[str, ...], seed: int) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in sizes.split(",")):
            fasta = Path(tmp) / f"proteome_{n}.fasta"
            sample_proteome(Path(data), n, seed, fasta)
            for mode in modes or ("two-tower", "hybrid"):
                found = run(fasta, mode, Path(tmp) / "out.tsv")
                share = f"{100 * found['search_s'] / found['seconds']:.0f} %" if mode == "hybrid" else ""
                rows.append((n, mode, found["seconds"], n / found["seconds"], found["peak_gb"], share))
                click.echo(f"{n} {mode}: {found['seconds']:.1f} s", err=True)
                os.remove(Path(tmp) / "out.tsv")
    click.echo("| proteins | pipeline | seconds | proteins/s | peak RSS (GB) | homology search share |")
    click.echo("|---|---|---|---|---|---|")
    for n, mode, seconds, rate, peak, share in rows:
        click.echo(f"| {n:,} | {mode} | {seconds:.1f} | {rate:.1f} | {peak:.2f} | {share} |")


if __name__ == "__main__":
    main()
