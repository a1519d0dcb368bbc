"""The protein tower in each precision on the CAFA3 targets: seconds (best of --repeats, in one
process, ranges and kernels made beforehand) and how far its vectors are from fp32's; prints a table.

    python benchmarks/int8_tower.py [--data ../shared/data] [--precisions fp32,int8,bf16] [--repeats 3]

As on a CPU without native bf16 (docs/benchmarks.md, speed on every CPU):

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 FBGEMM_ENABLE_INSTRUCTIONS=AVX2 \\
        MKL_ENABLE_INSTRUCTIONS=AVX2 python benchmarks/int8_tower.py --precisions fp32,int8
"""
from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np

from machine import machine_line
from retrieval.io.fasta import read_fasta
from retrieval.models.retriever import RetrievalModel

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=str(DEFAULT_DATA), show_default=True)
@click.option("--precisions", default="fp32,int8", show_default=True, help="Comma-separated, fp32 first.")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
def main(data, precisions, repeats):
    tower = RetrievalModel.from_pretrained(None).protein_encoder
    sequences = [r.sequence for r in read_fasta(Path(data) / "test_cafa3_benchmark" / "targets.fasta")]
    kinds = precisions.split(",")
    vectors, seconds = {}, {k: [] for k in kinds}
    for kind in kinds:
        tower.encode(sequences[:64], precision=kind)  # int8's ranges, oneDNN's kernels
    for _ in range(repeats):
        for kind in kinds:
            start = time.perf_counter()
            vectors[kind] = tower.encode(sequences, precision=kind)
            seconds[kind].append(time.perf_counter() - start)
    print(f"| precision | seconds ({len(sequences):,} proteins, best of {repeats}) | proteins/s | "
          f"cosine to {kinds[0]}: min / mean |\n|---|---|---|---|")
    for kind in kinds:
        cosine = (vectors[kind] * vectors[kinds[0]]).sum(axis=1)
        best = min(seconds[kind])
        print(f"| {kind} | {best:.2f} | {len(sequences) / best:.0f} | {cosine.min():.5f} / {np.mean(cosine):.6f} |")
    print(machine_line("auto"))


if __name__ == "__main__":
    main()
