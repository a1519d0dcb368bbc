"""The GAF reader on large files: time and peak memory as the file grows; prints one table.

    python benchmarks/annotation_readers.py [--data ../shared/data] [--sizes-mb 100,1000]

The lines are real annotations, written as GAF 2.2: the experimental GO annotations of
``train_goa2019exp_7sp`` (evidence EXP, their taxa), repeated until the file reaches each size, so
a large file states the same pairs many times, as a release's file restates a protein's term from
many papers. Each size is read by a fresh process (``prot-retrieve``'s ``read_gaf``); memory is its
maximum resident set size.
"""
from __future__ import annotations

import gzip
import subprocess
import sys
import tempfile
from pathlib import Path

import click

from machine import machine_line

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
READ = """
import resource, sys, time
from retrieval.io.annotations import AnnotationFilter, read_gaf
start = time.perf_counter()
pairs, counts = read_gaf(sys.argv[1], AnnotationFilter("experimental"))
print(f"{time.perf_counter() - start:.1f}\\t{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}\\t{len(pairs)}\\t{counts.kept}")
"""


def real_lines(data: Path) -> list[str]:
    taxa = {}
    with gzip.open(data / "train_goa2019exp_7sp" / "sequences.fasta.gz", "rt") as fh:
        for line in fh:
            if line.startswith(">"):
                words = line[1:].split()
                taxa[words[0]] = next((w.split("=", 1)[1] for w in words if w.startswith("taxon=")), "1")
    lines = []
    with gzip.open(data / "train_goa2019exp_7sp" / "annotations_leaf_exp.tsv.gz", "rt") as fh:
        next(fh)
        for row in fh:
            protein, term = row.split("\t")[:2]
            lines.append("\t".join(["UniProtKB", protein, protein, "enables", term, "PMID:1", "EXP", "", "F",
                                    "", "", "protein", f"taxon:{taxa.get(protein, '1')}", "20190129", "UniProt", "",
                                    ""]) + "\n")
    return lines


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=str(DEFAULT_DATA), show_default=True)
@click.option("--sizes-mb", default="100,1000", show_default=True)
def main(data: str, sizes_mb: str) -> None:
    lines = real_lines(Path(data))
    block = "".join(lines).encode()
    click.echo("| GAF size | lines | unique pairs kept | seconds | peak RSS (MB) |")
    click.echo("|---|---|---|---|---|")
    for size in (int(s) for s in sizes_mb.split(",")):
        with tempfile.NamedTemporaryFile(suffix=".gaf") as fh:
            fh.write(b"!gaf-version: 2.2\n")
            written = 0
            while written < size * 2**20:
                fh.write(block)
                written += len(block)
            fh.flush()
            out = subprocess.run([sys.executable, "-c", READ, fh.name], capture_output=True, text=True, check=True,
                                 cwd=ROOT).stdout.split()
            click.echo(f"| {written / 2**20:,.0f} MB | {int(out[3]):,} | {int(out[2]):,} | {out[0]} | {out[1]} |")
    click.echo(machine_line())


if __name__ == "__main__":
    main()
