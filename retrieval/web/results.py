"""What the web app shows and serves of a finished job: its predictions in every output format
(rendered by the same writer as ``annotate``, block by block, so the files are the same), one
protein's predictions with their evidence, and the GO graph around them."""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from retrieval.io.fasta import FastaReader
from retrieval.io.writers import PredictionWriter

#: The columns ``annotate`` writes without --explain.
PLAIN = ["protein_id", "term_id", "score", "aspect", "name"]
#: Media types of the downloads.
MEDIA = {"tsv": "text/tab-separated-values", "cafa": "text/plain", "gaf": "text/plain",
         "jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}


def provenance(result: Path) -> dict[str, str]:
    """What made the job's predictions, as its Parquet file records it."""
    import pyarrow.parquet as pq

    metadata = pq.ParquetFile(result).schema_arrow.metadata or {}
    return json.loads(metadata.get(b"prot-retrieve", b"{}"))


def render(result: Path, fasta: Path, fmt: str, fh: IO, explain: bool = False, db: str = "", taxon: str = "") -> None:
    """The job's predictions in ``fmt`` into ``fh`` (text, or bytes for Parquet), as ``annotate``
    with the same options writes them (``explain``: with the evidence columns; GAF always reads them)."""
    import pyarrow.parquet as pq

    keep = None if explain or fmt == "gaf" else PLAIN
    writer = PredictionWriter(fh, fmt, provenance(result), db, taxon)
    if fmt == "gaf":
        for record in FastaReader(fasta):
            writer.note(record)
    source = pq.ParquetFile(result)
    for group in range(source.num_row_groups):  # one per block, as annotate wrote them
        writer.write(source.read_row_group(group).to_pandas()[keep or slice(None)])
    writer.close()


@functools.lru_cache(maxsize=8)
def table(result: Path, modified: float) -> pd.DataFrame:
    """The whole result, kept for the few jobs looked at last (``modified`` keys a rewritten file)."""
    return pd.read_parquet(result)


def protein_rows(frame: pd.DataFrame, protein: str) -> list[dict]:
    """One protein's predictions with their evidence, best first, JSON-ready (NaN as None)."""
    rows = frame[frame["protein_id"] == protein].drop(columns="protein_id")
    return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
            for r in rows.to_dict(orient="records")]


def proteins(frame: pd.DataFrame) -> list[dict]:
    """Per protein, in input order: how many predictions it has and its best one."""
    best = frame.sort_values("score", ascending=False, kind="stable").drop_duplicates("protein_id")
    counts = frame.groupby("protein_id", sort=False).size()
    return [{"protein_id": p, "predictions": int(counts[p]), "best": best.loc[best["protein_id"] == p, "name"].iloc[0],
             "best_score": float(best.loc[best["protein_id"] == p, "score"].iloc[0])} for p in counts.index]


def go_graph(index, rows: list[dict]) -> dict:
    """The predicted terms of one protein and all their ancestors in the index's GO graph, as
    cytoscape elements: nodes (id, name, aspect, score or None for an ancestor not predicted) and
    edges child -> parent (is_a and part_of, as propagated)."""
    if index.edges is None:
        return {"nodes": [], "edges": []}
    ids = np.asarray(index.catalogue.ids, dtype=object)
    row_of = {t: i for i, t in enumerate(ids)}
    child, parent = index.edges
    parents: dict[int, list[int]] = {}
    for c, p in zip(child.tolist(), parent.tolist()):
        parents.setdefault(c, []).append(p)
    scores = {row_of[r["term_id"]]: r["score"] for r in rows if r["term_id"] in row_of}
    seen, todo = set(scores), list(scores)
    while todo:
        for p in parents.get(todo.pop(), ()):
            if p not in seen:
                seen.add(p)
                todo.append(p)
    names = index.catalogue.table["name"].to_numpy(dtype=object)
    aspects = index.catalogue.table["aspect"].to_numpy(dtype=object)
    nodes = [{"data": {"id": ids[i], "name": names[i], "aspect": aspects[i], "score": scores.get(i)}}
             for i in sorted(seen)]
    edges = [{"data": {"id": f"{ids[c]}>{ids[p]}", "source": ids[c], "target": ids[p]}}
             for c in sorted(seen) for p in parents.get(c, ()) if p in seen]
    return {"nodes": nodes, "edges": edges}
