"""What a new user waits for: help, the first and the second ``annotate`` of the example, and a
proteome-sized run, each as a fresh ``prot-retrieve`` process.

    python benchmarks/first_run.py [--search auto|mmseqs|diamond] [--proteome FASTA] [--repeats 3]

The first run uses an empty cache (``PROT_RETRIEVE_CACHE`` set to a new temporary folder), as after
``pip install``: it assembles the shipped GO index and builds the search database of the shipped
references. The second run reuses that cache. ``--proteome`` (default: the 3,329 CAFA3 targets
when ``../shared/data`` is there) is annotated with the warm cache. Prints one table of wall seconds
(median over ``--repeats`` for the warm runs).
"""
from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import click

from machine import machine_line

ROOT = Path(__file__).resolve().parents[1]
CAFA3 = ROOT.parent / "shared" / "data" / "test_cafa3_benchmark" / "targets.fasta"
COMMANDS = ("", "annotate", "build-index", "build-reference", "evaluate", "train", "train-reranker", "selftest")


def wall(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(["prot-retrieve", *args], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def proteins_in(fasta: Path) -> int:
    return sum(line.startswith(">") for line in fasta.read_text().splitlines())


@click.command()
@click.option("--search", "searcher", default="auto", show_default=True, help="annotate --search.")
@click.option("--proteome", type=click.Path(exists=True, dir_okay=False), help="A larger FASTA to time.")
@click.option("--repeats", type=int, default=3, show_default=True)
@click.option("--precision", default="auto", show_default=True, help="annotate --precision.")
def main(searcher: str, proteome: str | None, repeats: int, precision: str) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "PROT_RETRIEVE_CACHE": cache}
        for command in COMMANDS:
            args = [command, "--help"] if command else ["--help"]
            seconds = statistics.median(wall(args, env) for _ in range(repeats))
            rows.append((f"prot-retrieve {' '.join(args)}", seconds, ""))
        example = ROOT / "examples" / "proteins.fasta"
        annotate = ["annotate", str(example), "--top", "20", "--search", searcher, "--precision", precision,
                    "-o", os.devnull]
        rows.append(("annotate examples/proteins.fasta, first run (empty cache)", wall(annotate, env), ""))
        seconds = statistics.median(wall(annotate, env) for _ in range(repeats))
        rows.append(("annotate examples/proteins.fasta, second run", seconds, ""))
        big = Path(proteome) if proteome else (CAFA3 if CAFA3.is_file() else None)
        if big is not None:
            n = proteins_in(big)
            args = ["annotate", str(big), "--top", "20", "--search", searcher, "--precision", precision,
                    "--no-embedding-cache", "-o", os.devnull]  # the tower computed, as for a new proteome
            seconds = wall(args, env)
            rows.append((f"annotate {big.name} ({n} proteins), warm cache", seconds, f"{n / seconds:.1f} proteins/s"))
    width = max(len(r[0]) for r in rows)
    click.echo(f"{'step':<{width}}  seconds  rate")
    for name, seconds, rate in rows:
        click.echo(f"{name:<{width}}  {seconds:7.2f}  {rate}")
    click.echo(machine_line(precision))


if __name__ == "__main__":
    main()
