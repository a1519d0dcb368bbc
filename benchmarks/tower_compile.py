"""Issue 26's option "torch.compile for the tower": the shipped protein tower, eager against
compiled (inductor, dynamic shapes), on the first CAFA3 targets, in one process.

    python benchmarks/tower_compile.py [--proteins 1000] [--precision fp32] [--repeats 3]
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/tower_compile.py   # as AVX2-only

Prints the first compiled pass (compilation included: batches are padded to multiples of 64
residues, so each new length compiles again), the best of the repeats for each, and the largest
difference between the two embeddings.
"""
from __future__ import annotations

import time

import click
import numpy as np
import torch

from retrieval.io.fasta import read_fasta
from retrieval.models.retriever import DEFAULT_MODEL, RetrievalModel

from cafa3 import DEFAULT_DATA  # the sibling script
from machine import machine_line


@click.command()
@click.option("--proteins", default=1000, show_default=True)
@click.option("--precision", default="fp32", show_default=True)
@click.option("--repeats", default=3, show_default=True)
def main(proteins, precision, repeats):
    sequences = [r.sequence for r in read_fasta(DEFAULT_DATA / "test_cafa3_benchmark" / "targets.fasta")][:proteins]
    tower = RetrievalModel.from_pretrained(DEFAULT_MODEL).protein_encoder.eval()

    def timed() -> tuple[float, np.ndarray]:
        started = time.perf_counter()
        vectors = tower.encode(sequences, precision=precision)
        return time.perf_counter() - started, vectors

    timed()  # oneDNN's kernels for these shapes
    eager = [timed() for _ in range(repeats)]
    tower.backbone = torch.compile(tower.backbone, dynamic=True)
    first, _ = timed()
    compiled = [timed() for _ in range(repeats)]
    best_eager, best_compiled = min(t for t, _ in eager), min(t for t, _ in compiled)
    print(f"| tower, {len(sequences)} CAFA3 targets | seconds | proteins/s |\n|---|---|---|")
    print(f"| eager (best of {repeats}) | {best_eager:.2f} | {len(sequences) / best_eager:.0f} |")
    print(f"| compiled, first pass (compiling) | {first:.2f} | {len(sequences) / first:.0f} |")
    print(f"| compiled (best of {repeats}) | {best_compiled:.2f} | {len(sequences) / best_compiled:.0f} |")
    print(f"largest difference of the embeddings: {np.abs(compiled[0][1] - eager[0][1]).max():.2e}")
    print(machine_line(precision))


if __name__ == "__main__":
    main()
