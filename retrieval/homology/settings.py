"""How references are searched: the settings, light to import (the CLI reads their choices)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

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


def _f(default, help: str, **click):
    """A field with its command-line help; ``click``: the option's name (``flag``), ``choices`` or ``min``."""
    return field(default=default, metadata={"help": help, **click})


@dataclass
class SearchSettings:
    """How queries are searched against the references (the search options of ``annotate``,
    ``build-protein-index`` and ``transfer`` are generated from these fields)."""

    searcher: str = _f("auto", "How references are searched: auto (MMseqs2, shipped with pip; else DIAMOND; else "
                               "embeddings), mmseqs, diamond, or embedding (nearest proteins by protein-tower "
                               "embedding: far less accurate with the shipped tower).", flag="--search",
                       choices=SEARCHERS)
    sensitivity: str = _f("sensitive", "Search sensitivity: DIAMOND's modes; MMseqs2 -s 4 / 5.7 / 7.5 / 8.5.",
                          choices=SENSITIVITIES)
    evalue: float = _f(1e-3, "Hits above this e-value are ignored.")
    max_targets: int = _f(25, "Hits kept per query and reference.", min=1)
    max_seqs: int = _f(100, "MMseqs2 --max-seqs: prefilter candidates aligned per query (more: slower, rarely "
                            "better).", min=1)
    # Two steps prefilter the CAFA3 targets 3x faster than one at -s 5.7 (13 % of them have no hit at -s 4).
    sensitivity_steps: int = _f(2, "MMseqs2: search at -s 4 first, then the queries without a hit again, up to "
                                   "--sensitivity in this many steps (1: one search).", min=1)
    # The prefilter ranks the likely hits first.
    max_rejected: int = _f(20, "MMseqs2 --max-rejected: stop a query's alignments after this many in a row fail "
                               "the e-value (0: align every candidate).", min=0)
    # Members of large families stop early: the CAFA3 search 17.4 -> 12.5 s, NK Fmax within 0.002
    # (docs/benchmarks.md#homology-search-settings).
    max_accept: int = _f(20, "MMseqs2 --max-accept: stop a query's alignments after this many hits, in the "
                             "prefilter's order (0: no limit).", min=0)
    # Without a backtrace the alignments take half the time.
    exact_identity: bool = _f(False, "MMseqs2: count identity on the alignment (-a; slower) instead of "
                                     "estimating it from the score.")
    min_identity: float = _f(0.0, "Hits below this percent identity are ignored.")
    threads: int = _f(0, "Threads of the search tool (0: every core).", min=0)

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
