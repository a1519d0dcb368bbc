"""How references are searched: the settings, light to import (the CLI reads their choices)."""
from __future__ import annotations

import os
from dataclasses import dataclass

from index.errors import InputError

SEARCHERS = ("auto", "mmseqs", "diamond", "embedding")
#: What ``auto`` picks: the first tool found. MMseqs2 with its prebuilt index answers a handful of
#: queries in about 2 s where DIAMOND re-seeds the whole database on every call (about 18 s).
AUTO_ORDER = ("mmseqs", "diamond")
SENSITIVITIES = ("fast", "sensitive", "more-sensitive", "very-sensitive")
#: MMseqs2 ``-s`` for each of DIAMOND's sensitivity modes (one knob for both tools).
MMSEQS_SENSITIVITY = {"fast": 4.0, "sensitive": 5.7, "more-sensitive": 7.5, "very-sensitive": 8.5}
#: MMseqs2 -s of the first of several sensitivity steps (SearchSettings.sensitivity_steps).
MMSEQS_START_SENSITIVITY = MMSEQS_SENSITIVITY["fast"]


def default_threads() -> int:
    """Every core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass
class SearchSettings:
    """How queries are searched against the references."""

    # auto (MMseqs2, else DIAMOND, else embeddings), mmseqs, diamond, or embedding: the nearest
    # reference proteins by protein-tower embedding (goPredSim-style; far weaker with the shipped CNN).
    searcher: str = "auto"
    # DIAMOND's mode names; MMseqs2 -s from MMSEQS_SENSITIVITY.
    sensitivity: str = "sensitive"
    evalue: float = 1e-3  # hits above this e-value are ignored
    max_targets: int = 25  # hits kept per query and reference
    # MMseqs2 --max-seqs: prefilter candidates aligned per query; only max_targets hits per
    # reference are kept.
    max_seqs: int = 100
    # MMseqs2 searches at -s 4 first, then the queries still without a hit again, up to the set
    # sensitivity in this many steps in all (1: one search at the set sensitivity). Two steps
    # prefilter the CAFA3 targets 3x faster than one at -s 5.7 (13 % of them have no hit at -s 4).
    sensitivity_steps: int = 2
    # MMseqs2 --max-rejected: a query's alignments stop after this many in a row fail the e-value
    # (the prefilter ranks the likely hits first); 0: align every prefilter candidate.
    max_rejected: int = 20
    # MMseqs2 --max-accept: a query's alignments stop after this many pass the e-value, taken in
    # the prefilter's order (0: no limit). Members of large families stop early: the CAFA3 search
    # 17.4 -> 12.5 s, NK Fmax within 0.002 (docs/benchmarks.md#homology-search-settings).
    max_accept: int = 20
    # MMseqs2: False estimates identity from the alignment score (no backtrace; the alignments take
    # half the time), True measures it on the alignment (-a).
    exact_identity: bool = False
    min_identity: float = 0.0  # percent identity below which hits are ignored
    threads: int = 0  # 0: every core

    def __post_init__(self):
        if self.searcher not in SEARCHERS:
            raise InputError(f"unknown searcher {self.searcher!r} (one of {', '.join(SEARCHERS)})")
        if self.sensitivity not in SENSITIVITIES:
            raise InputError(f"unknown sensitivity {self.sensitivity!r} (one of {', '.join(SENSITIVITIES)})")
        if min(self.threads, self.max_rejected, self.max_accept) < 0 or self.max_targets < 1 or self.max_seqs < 1 \
                or self.sensitivity_steps < 1:
            raise InputError("--threads, --max-rejected and --max-accept must be >= 0, max_targets, max_seqs and "
                             "sensitivity_steps >= 1")
        self.threads = self.threads or default_threads()
