"""Annotating a FASTA file into an output file: in blocks, with progress on disk, resumable.

While ``annotate -o OUT`` runs, each finished block of proteins is written to ``OUT.partial/``
(``part-00000.tsv`` ... and ``manifest.json``: the input's sha256, the fingerprints of the model,
index and references, the options, and per part its protein count and sha256). Only when every
block is done are the parts written out as ``OUT`` in the chosen format (atomically) and the folder
removed, so an interrupted run never leaves an output that looks complete. ``--resume`` checks the
manifest against this run (same input, model, index, references, options: else it refuses), checks
every part against its hash (an edited or truncated part is refused), skips the proteins already
done and carries on. Memory holds one block at a time.
"""
from __future__ import annotations

import ctypes
import dataclasses
import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Iterable, Iterator

import pandas as pd

from index.errors import InputError, RunFailed
from retrieval.annotate import Annotator, as_records
from retrieval.config import AnnotateConfig
from retrieval.io.fasta import ProteinRecord
from retrieval.io.writers import PredictionWriter, atomic_output
from retrieval.models.batching import blocks

LOG = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """What one ``annotate_file`` call did."""

    proteins: int  # proteins in the input
    resumed: int  # proteins found done by an earlier, interrupted run
    seconds: float


def provenance(annotator: Annotator, precision: str = "auto") -> dict[str, str]:
    """What made the predictions: recorded in every output format that can carry it."""
    from retrieval.models.precision import describe_precision

    tower = next(annotator.model.protein_encoder.parameters()).device
    record = {"prot-retrieve": metadata.version("prot-retrieve"), "model": annotator.model.fingerprint(),
              "index": annotator.index.fingerprint,
              "ontology": annotator.index.config["build"].get("ontology_release", ""),
              "precision": describe_precision(precision, tower)}
    if annotator.homology is not None:
        described = annotator.homology.describe()
        record["references"] = ",".join(r.fingerprint() for r in annotator.homology.references)
        record["search"] = ":".join([described["searcher"], described["version"] or "-"]
                                    + [f"{k}={v}" for k, v in annotator.homology.settings_described()])
    return record


class LocalEngine:
    """Blocks annotated one after another in this process (torch and the search tool use its cores)."""

    def run(self, annotator: Annotator, records: Iterable[ProteinRecord], config: AnnotateConfig,
            about: dict) -> Iterator[tuple[int, pd.DataFrame]]:
        """(proteins, predictions) per block of ``config.search_block`` records, in input order."""
        for block in blocks(records, config.search_block):
            yield len(block), annotator.annotate(block, config)


def annotate_file(annotator: Annotator, fasta: str | os.PathLike, output: str | os.PathLike, fmt: str = "tsv",
                  config: AnnotateConfig | None = None, db: str = "", skip_invalid: bool = False,
                  resume: bool = False, progress=None, engine=None) -> RunSummary:
    """Annotate every protein of ``fasta`` into ``output`` (``-``: stdout, streamed, not resumable).

    Args:
        progress: called with the number of proteins finished since the last call (a progress bar).
        engine: :class:`LocalEngine` (default) or :class:`retrieval.ray_engine.RayEngine`.
    """
    config = config or AnnotateConfig()
    if fmt == "gaf":  # GAF's With/From column names the supporting protein, which the evidence finds
        config = dataclasses.replace(config, explain=True)
    engine = engine or LocalEngine()
    start = time.perf_counter()
    about = provenance(annotator, config.precision)
    if str(output) == "-" or _is_special(output):
        if resume:
            raise InputError("--resume needs an output file (-o FILE): progress is kept beside it")
        if not isinstance(engine, LocalEngine):
            raise InputError("--engine ray needs an output file (-o FILE): its progress is kept beside it")
        with atomic_output(output, (fasta,), binary=fmt == "parquet") as fh:
            n = _stream(annotator, fasta, PredictionWriter(fh, fmt, about, db, config.taxon), config,
                        skip_invalid, progress)
        return RunSummary(n, 0, time.perf_counter() - start)
    target = Path(os.path.realpath(output))
    if target == Path(os.path.realpath(fasta)):
        raise InputError(f"{target}: the output would overwrite an input file")
    if target.is_dir() or not target.parent.is_dir() or not os.access(target.parent, os.W_OK):
        raise InputError(f"{target}: cannot write here (folder missing, not writable, or a folder)")
    partial = Partial(Path(f"{output}.partial"), _run_key(annotator, fasta, fmt, config, db, skip_invalid, about))
    done = partial.resume() if resume else partial.start()
    try:
        n = _annotate_blocks(annotator, engine, fasta, output, fmt, config, db, skip_invalid, progress, partial,
                             done, about)
    except InputError:  # bad input is not an interruption: there is nothing to resume
        partial.remove()
        raise
    except RunFailed as err:
        raise RunFailed(f"{err}; {partial.proteins()} proteins are done and kept in {partial.folder}: run the "
                        "same command with --resume to finish") from None
    partial.remove()
    return RunSummary(n, done, time.perf_counter() - start)


def _annotate_blocks(annotator, engine, fasta, output, fmt, config, db, skip_invalid, progress, partial: "Partial",
                     done: int, about: dict) -> int:
    """The blocks not done yet into parts, then every part into the output; returns the protein count."""
    records = iter(as_records(fasta, skip_invalid=skip_invalid))
    n = 0
    for n, _ in zip(range(1, done + 1), records):  # the proteins an earlier run finished
        pass
    if progress and done:
        progress(done)
    for proteins, table in engine.run(annotator, records, config, about):
        partial.add(table, proteins)
        return_freed_memory()
        n += proteins
        if progress:
            progress(proteins)
    with atomic_output(output, (fasta,), binary=fmt == "parquet") as fh:
        writer = PredictionWriter(fh, fmt, about, db, config.taxon)
        if fmt == "gaf":  # its DB, symbol and taxon columns come from the headers
            for record in as_records(fasta, skip_invalid=skip_invalid):
                writer.note(record)
        for table in partial.tables():
            writer.write(table)
        writer.close()
    return n


def _stream(annotator, fasta, writer: PredictionWriter, config, skip_invalid, progress) -> int:
    count = 0

    def noted() -> Iterator[ProteinRecord]:
        nonlocal count
        for record in as_records(fasta, skip_invalid=skip_invalid):
            writer.note(record)
            count += 1
            if progress:
                progress(1)
            yield record

    for chunk in annotator.iter_annotate(noted(), config):
        writer.write(chunk)
    writer.close()
    return count


def return_freed_memory() -> None:
    """Hand the heap pages freed by a block back to the system: glibc keeps them, and the peak then
    creeps up by fragmentation over a long run (measured in docs/benchmarks.md). A no-op elsewhere."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _is_special(path) -> bool:
    """A device or FIFO: written in place, so there is nowhere to keep progress."""
    path = Path(os.path.realpath(path))
    return path.exists() and not path.is_file() and not path.is_dir()


def _run_key(annotator, fasta, fmt, config, db, skip_invalid, about) -> dict:
    """Everything a resumed run must share with the run it continues."""
    return {"input_sha256": _sha256(Path(fasta)), "format": fmt, "db": db, "skip_invalid": skip_invalid,
            "options": dataclasses.asdict(config), **{k: v for k, v in about.items() if k != "prot-retrieve"}}


class Partial:
    """The progress folder of one run: finished blocks as parts, and the manifest that lists them."""

    MANIFEST = "manifest.json"

    def __init__(self, folder: Path, key: dict):
        self.folder, self.key = folder, key
        self.parts: list[dict] = []

    def start(self) -> int:
        if self.folder.exists():
            LOG.warning("%s: an earlier run was interrupted here; starting again (--resume continues it)",
                        self.folder)
            shutil.rmtree(self.folder)
        try:
            self.folder.mkdir()
        except OSError as err:
            raise InputError(f"{self.folder}: cannot write here ({err.strerror})") from None
        self._save()
        return 0

    def resume(self) -> int:
        """Proteins already done; refuses a progress folder of another run or with a changed part."""
        path = self.folder / self.MANIFEST
        if not path.is_file():
            LOG.warning("%s: nothing to resume, starting from the first protein", self.folder)
            return self.start()
        try:
            manifest = json.loads(path.read_text())
        except ValueError:
            raise InputError(f"{path}: corrupt; delete {self.folder} and run again") from None
        changed = [k for k in self.key if manifest.get("key", {}).get(k) != self.key[k]]
        if changed:
            raise InputError(f"--resume: {self.folder} belongs to another run ({', '.join(changed)} differ); "
                             f"delete it or run without --resume")
        for part in manifest["parts"]:
            file = self.folder / part["file"]
            if not file.is_file() or _sha256(file) != part["sha256"]:
                raise InputError(f"--resume: {file} was changed or truncated since it was written; delete "
                                 f"{self.folder} and run again")
        self.parts = manifest["parts"]
        LOG.warning("resuming: %d proteins done in %d block(s)", self.proteins(), len(self.parts))
        return self.proteins()

    def proteins(self) -> int:
        """Proteins in the finished parts."""
        return sum(p["proteins"] for p in self.parts)

    def add(self, table: pd.DataFrame, proteins: int) -> None:
        """Write a finished block (atomically), then record it in the manifest (atomically)."""
        name = f"part-{len(self.parts):05d}.tsv"
        tmp = self.folder / f".{name}.tmp"
        table.to_csv(tmp, sep="\t", index=False)  # full precision: the final output formats from these
        os.replace(tmp, self.folder / name)
        self.parts.append({"file": name, "proteins": proteins, "sha256": _sha256(self.folder / name)})
        self._save()

    def tables(self) -> Iterator[pd.DataFrame]:
        for part in self.parts:
            yield pd.read_csv(self.folder / part["file"], sep="\t", keep_default_na=False,
                              dtype={"protein_id": str, "term_id": str, "aspect": str, "name": str,
                                     "support_protein": str}, float_precision="round_trip")

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def _save(self) -> None:
        tmp = self.folder / f".{self.MANIFEST}.tmp"
        tmp.write_text(json.dumps({"key": self.key, "parts": self.parts}, indent=1))
        os.replace(tmp, self.folder / self.MANIFEST)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
