"""What a target rate leaves for the model: a fresh process's start and each stage of a CAFA3 run
timed alone, wall and CPU seconds, against the time the rate allows; prints a table.

    python benchmarks/throughput_floor.py [--data ../shared/data] [--rate 250] [--repeats 3]

Stages, each the median of --repeats with the shipped pipeline and a warm cache (run it after one
``prot-retrieve annotate``): the start of a new process (imports; imports and loading the shipped
model, GO index and references), the MMseqs2 search of the 3,329 CAFA3 targets (database built
beforehand, untimed), the protein tower, and the rest (recall, both re-rankers and lending,
propagation and selection) given the hits and the tower's vectors. CPU seconds count both cores and
the search tool's processes: a stage whose CPU is twice its wall time leaves no core idle for
another stage to overlap. Seconds are wall time on this machine: run it with nothing else running.
"""
from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import click

from machine import machine_line
from search_settings import ReplayedHits  # the sibling script
from retrieval.annotate import Annotator
from retrieval.io.fasta import read_fasta

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
STARTS = {"start: imports": "import retrieval.annotate",
          "start: imports + loading the shipped pipeline":
              "from retrieval.annotate import Annotator; Annotator.from_pretrained()"}


def cpu_seconds() -> float:
    """User + system seconds of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(step, repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``step()`` over ``repeats`` calls."""
    walls, cpus = [], []
    for _ in range(repeats):
        cpu, start = cpu_seconds(), time.perf_counter()
        step()
        walls.append(time.perf_counter() - start)
        cpus.append(cpu_seconds() - cpu)
    return statistics.median(walls), statistics.median(cpus)


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=str(DEFAULT_DATA), show_default=True)
@click.option("--rate", type=click.FloatRange(min=1), default=250.0, show_default=True, help="Target proteins/s.")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
def main(data, rate, repeats) -> None:
    records = read_fasta(Path(data) / "test_cafa3_benchmark" / "targets.fasta")
    budget = len(records) / rate
    starts = [(name, *timed(lambda code=code: subprocess.run([sys.executable, "-c", code], check=True), repeats))
              for name, code in STARTS.items()]
    annotator = Annotator.from_pretrained()
    search = annotator.homology
    search.database.path()  # built (once per machine) before anything is timed
    hits = search.hits(records)
    stages = [(f"MMseqs2 search of the {len(records):,} targets", *timed(lambda: search.hits(records), repeats))]
    tower = annotator.model.protein_encoder
    sequences = [r.sequence for r in records]
    stages.append(("protein tower", *timed(lambda: tower.encode(sequences, precision="auto"), repeats)))
    annotator.homology = ReplayedHits(search, hits)  # the rest timed alone
    annotator.protein_vectors(sequences, "auto")  # the tower's vectors kept in the cache, read from there below
    annotator.annotate(records[:8])  # the lender table and function vectors loaded before the rest is timed
    stages.append(("recall, re-rank, lending, propagation, selection (hits and vectors given)",
                   *timed(lambda: annotator.annotate(records, embedding_cache=True), repeats)))
    start = starts[-1][1]  # loading the pipeline, imports included
    start_and_search = start + stages[0][1]
    total = start + sum(seconds for _, seconds, _ in stages)
    rows = starts + stages
    width = max(len(r[0]) for r in rows)
    click.echo(f"{'stage':<{width}}  wall s  CPU s")
    for name, wall, cpu in rows:
        click.echo(f"{name:<{width}}  {wall:6.2f}  {cpu:5.1f}")
    click.echo(f"\n{len(records):,} proteins at {rate:g} proteins/s: {budget:.1f} s. The start and the search alone: "
               f"{start_and_search:.1f} s; every stage one after another: {total:.1f} s "
               f"({len(records) / total:.0f} proteins/s).")
    click.echo(machine_line("auto"))


if __name__ == "__main__":
    main()
