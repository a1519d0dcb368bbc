"""User-facing settings and choices, light to import: the CLI builds its options from them.

(Importing this module costs no numpy, pandas or torch, so ``prot-retrieve --help`` stays fast.)
"""
from __future__ import annotations

from dataclasses import dataclass, field

from index.errors import InputError

ASPECT_CODES = ("MFO", "BPO", "CCO")
#: Output formats of ``annotate`` (see :class:`retrieval.io.writers.PredictionWriter`).
OUTPUT_FORMATS = ("tsv", "cafa", "gaf", "jsonl", "parquet")
#: auto: bf16 where the device computes it natively and faster; on a CPU without native bf16, the
#: compact protein tower's convolutions in int8 where that measures faster; else fp32 (see
#: retrieval.models.precision).
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
#: How ``annotate`` runs: in this process, or on Ray Data (one machine or a cluster).
ENGINES = ("local", "ray")


def check_precision(precision: str) -> None:
    """Raises InputError unless ``precision`` is one of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise InputError(f"--precision must be one of {', '.join(PRECISIONS)} (got {precision!r})")


def _f(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class AnnotateConfig:
    """Options of `prot-retrieve annotate` and :meth:`Annotator.annotate`."""

    top: int = _f(20, "Functions reported per protein (per aspect with --per-aspect).")
    recall: int = _f(300, "Candidates recalled from the index per protein before re-ranking.")
    min_score: float = _f(0.0, "Drop predictions scoring below this probability.")
    min_precision: float = _f(0.0, "Keep, per aspect, the predictions above the model's threshold for this "
                                   "precision (0.5, 0.6, 0.7, 0.8, 0.9 or 0.95; fitted on validation proteins, "
                                   "see docs); 0: no such filter.")
    aspect: str = _f("", "Only report this aspect (MFO, BPO or CCO); empty: all.")
    taxon: str = _f("", "NCBI taxon of proteins whose FASTA header has no taxon= or OX= tag (species prior of the "
                        "homology re-ranker, GAF taxon column); empty: unknown.")
    per_aspect: bool = _f(False, "Report the top N of each aspect instead of the top N overall.")
    propagate: bool = _f(True, "Make scores consistent with the ontology (parent >= child).")
    include_roots: bool = _f(False, "Also report the ontology roots (true of every protein, so left out).")
    explain: bool = _f(False, "Add the evidence behind each score: tower probability, prior, each reference's "
                              "transfer score, the best supporting reference protein with its identity and bitscore.")
    specific: bool = _f(False, "Report only the most specific terms: a term is dropped when one of its descendants "
                               "is reported (the top N then names functions, not their general ancestors).")
    embedding_cache: bool = _f(True, "Keep protein-tower vectors in the cache by sequence hash, so annotating a "
                                     "sequence again (another catalogue, other options) skips the tower.")
    batch_size: int = _f(256, "Proteins scored per chunk (memory stays flat).")
    search_block: int = _f(4096, "Proteins per homology search when a reference is given (larger is faster).")
    precision: str = _f("auto", "auto | fp32 | bf16 | fp16 | int8: autocast for the protein tower, and the "
                                "re-ranker's products with the candidates (int8: the compact protein tower's "
                                "convolutions only); auto: bf16 where the processor computes it natively and "
                                "faster (AVX-512 BF16, AMX; bf16-capable GPUs), else int8 where that measures "
                                "faster on the CPU, else fp32.")

    def check(self) -> None:
        if self.top < 1:
            raise InputError(f"--top must be at least 1 (got {self.top})")
        if self.batch_size < 1 or self.search_block < 1:
            raise InputError("--batch-size and --search-block must be at least 1")
        if self.recall < 1:
            raise InputError(f"--recall must be at least 1 (got {self.recall})")
        if self.aspect and self.aspect not in ASPECT_CODES:
            raise InputError(f"--aspect must be one of {', '.join(ASPECT_CODES)} (got {self.aspect!r})")
        if not 0 <= self.min_precision < 1:
            raise InputError(f"--min-precision must be in [0, 1) (got {self.min_precision})")
        if not 0 <= self.min_score <= 1:
            raise InputError(f"--min-score must be in [0, 1] (got {self.min_score})")
        check_precision(self.precision)
        if self.taxon and not (self.taxon.isascii() and self.taxon.isdigit() and int(self.taxon) > 0):
            raise InputError(f"--taxon must be an NCBI taxon id such as 9606 (got {self.taxon!r})")


@dataclass
class RayConfig:
    """Options of ``annotate --engine ray`` (see :mod:`retrieval.runners.ray`)."""

    address: str = _f("", "(--engine ray) Ray cluster to join (host:port of `ray start --head`, or auto); empty: start Ray on "
                          "this machine for the run.")
    workers: int = _f(0, "Annotating actors, each loading the model, index and references once; 0: the cluster's "
                         "CPUs (GPUs with --worker-gpus) divided by what each worker takes.")
    worker_cpus: int = _f(1, "CPUs per worker: its torch and search-tool threads.")
    worker_gpus: float = _f(0.0, "GPUs per worker (e.g. 1, or 0.5 to share one between two); the protein tower "
                                 "runs on it.")
    worker_restarts: int = _f(2, "Times a worker that died (killed, out of memory, node lost) is replaced and its "
                                 "block retried before the run fails (then --resume finishes it).")
    worker_block: int = _f(1024, "Proteins per worker call: one homology search, one part of the resumable "
                                 "progress.")

    def check(self) -> None:
        if min(self.workers, self.worker_gpus, self.worker_restarts) < 0 or min(self.worker_cpus, self.worker_block) < 1:
            raise InputError("--workers, --worker-gpus and --worker-restarts must be >= 0, --worker-cpus and "
                             "--worker-block >= 1")
