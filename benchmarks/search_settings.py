"""Homology search settings against speed and hybrid accuracy on CAFA3; prints a table.

    python benchmarks/search_settings.py [--data ../shared/data] [--repeats 3]
                                         [--setting mmseqs:sensitive:100:2:20:estimated:30 ...]

Each setting is TOOL:SENSITIVITY:MAX_SEQS[:STEPS:MAX_REJECTED:IDENTITY:MAX_ACCEPT], the MMseqs2
knobs of SearchSettings (max_seqs, sensitivity_steps, max_rejected, identity "aligned" or
"estimated", max_accept; DIAMOND reads only the sensitivity); left out, the last four are 1, 0,
aligned and 0, the exhaustive search of stop 20. For each: a pooled search of the shipped
references for the 3,329 CAFA3 targets, timed alone (its database built beforehand, untimed; the
median of --repeats searches); then the shipped hybrid model annotating the targets from those
hits, timed without the search, and scored on the no-knowledge targets (Fmax per aspect, the
project's evaluator). Seconds are wall time on this machine: run it with nothing else running.
"""
from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path

import click
import pandas as pd

from cafa3 import DEFAULT_DATA, cafa3_setting, with_cafa_taxa  # the sibling script
from retrieval.annotate import Annotator
from retrieval.homology import HomologySearch, SearchSettings
from retrieval.homology.shipped import shipped_references

DEFAULT_SETTINGS = ("mmseqs:sensitive:100", "mmseqs:sensitive:100:2:0:aligned", "mmseqs:sensitive:100:1:20:aligned",
                    "mmseqs:sensitive:100:1:0:estimated", "mmseqs:sensitive:100:2:20:aligned",
                    "mmseqs:sensitive:100:2:20:estimated", "mmseqs:sensitive:100:2:20:estimated:50",
                    "mmseqs:sensitive:100:2:20:estimated:40", "mmseqs:sensitive:100:2:20:estimated:30",
                    "mmseqs:sensitive:100:2:20:estimated:20", "mmseqs:fast:100:1:20:estimated",
                    "diamond:more-sensitive:300")


def settings_of(spec: str) -> SearchSettings:
    """TOOL:SENSITIVITY:MAX_SEQS[:STEPS:MAX_REJECTED:IDENTITY:MAX_ACCEPT] -> SearchSettings."""
    given = spec.split(":")
    tool, sensitivity, max_seqs, steps, rejected, identity, accept = given + ["1", "0", "aligned", "0"][len(given) - 3:]
    return SearchSettings(searcher=tool, sensitivity=sensitivity, max_seqs=int(max_seqs), sensitivity_steps=int(steps),
                          max_rejected=int(rejected), exact_identity=identity == "aligned", max_accept=int(accept))


class ReplayedHits:
    """Stands in for a HomologySearch: the same references, hits found earlier."""

    def __init__(self, search: HomologySearch, hits: list[pd.DataFrame]):
        self.references, self._hits, self.searcher = search.references, hits, search.searcher

    def hits(self, records, u=None) -> list[pd.DataFrame]:
        return self._hits


@click.command()
@click.option("--data", type=click.Path(exists=True, file_okay=False), default=str(DEFAULT_DATA), show_default=True)
@click.option("--setting", "settings", multiple=True, default=DEFAULT_SETTINGS, show_default=True,
              help="TOOL:SENSITIVITY:MAX_SEQS[:STEPS:MAX_REJECTED:IDENTITY:MAX_ACCEPT], repeatable.")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True,
              help="Searches per setting; the median time is reported (this machine's timings vary by about 10 %).")
def main(data, settings, repeats) -> None:
    logging.basicConfig(level=logging.WARNING)
    setting = cafa3_setting(Path(data))
    records = with_cafa_taxa(setting.records)
    annotator = Annotator.from_pretrained(reference="default")
    annotator.annotate(records[:8])  # loads the index and the towers before anything is timed
    rows = []
    for spec in settings:
        search = HomologySearch(shipped_references(), settings_of(spec))
        if search.database is not None:
            search.database.path()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            hits = search.hits(records)
            times.append(time.perf_counter() - start)
        searched = statistics.median(times)
        annotator.homology = ReplayedHits(search, hits)
        start = time.perf_counter()
        table = annotator.annotate(records, top=1500, min_score=0.01)
        rest = time.perf_counter() - start
        scored = setting.nk.evaluate(table.rename(columns={"protein_id": "protein", "term_id": "term"}))
        fmax = {r.aspect: r.fmax for r in scored.itertuples()}
        rows.append({"setting": spec, "search s": round(searched, 1),
                     "hits/query": round(sum(len(h) for h in hits) / len(records), 1),
                     "rest s": round(rest, 1), "proteins/s": round(len(records) / (searched + rest), 1),
                     **{f"NK {a}": round(fmax[a], 3) for a in ("MFO", "BPO", "CCO")}})
        click.echo(rows[-1], err=True)
    click.echo(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
