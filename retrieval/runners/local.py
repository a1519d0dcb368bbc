"""Annotating a FASTA file into an output file: read once, cut into blocks, each block annotated
(in this process, or by :class:`retrieval.runners.ray.RayEngine`) and appended to the output in its
final format; resumable (:mod:`retrieval.runners.progress`).
"""
from __future__ import annotations

import ctypes
import dataclasses
import io
import itertools
import logging
import os
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Iterable, Iterator

import pandas as pd

from index.errors import InputError, RunFailed
from retrieval.annotate import Annotator, as_records
from retrieval.config import AnnotateConfig
from retrieval.io.fasta import FastaReader, ProteinRecord
from retrieval.io.writers import PredictionWriter, atomic_output
from retrieval.models.batching import blocks
from retrieval.runners.progress import Progress

LOG = logging.getLogger(__name__)


@dataclass
class RunSummary:
    """What one ``annotate_file`` call did."""

    proteins: int  # proteins in the input
    resumed: int  # proteins found done by an earlier, interrupted run
    seconds: float


@dataclass
class Block:
    """Consecutive proteins of the input, annotated together, and the sha256 of the input read
    through the last of them (None where the cut does not know it)."""

    records: list[ProteinRecord]
    input_sha256: str | None = None


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

    def block_size(self, config: AnnotateConfig) -> int:
        return config.search_block

    def run(self, annotator: Annotator, parts: Iterable[Block], config: AnnotateConfig,
            about: dict) -> Iterator[tuple[Block, pd.DataFrame]]:
        """Each block with its predictions, in input order."""
        for block in parts:
            yield block, annotator.annotate(block.records, config)


def annotate_file(annotator: Annotator, fasta: str | os.PathLike, output: str | os.PathLike, fmt: str = "tsv",
                  config: AnnotateConfig | None = None, db: str = "", skip_invalid: bool = False,
                  resume: bool = False, progress=None, engine=None, restart: bool = False) -> RunSummary:
    """Annotate every protein of ``fasta`` (``-``: standard input) into ``output`` (``-``: stdout,
    streamed, not resumable).

    Args:
        resume: continue the interrupted run whose progress is kept beside ``output``.
        restart: discard such a run's progress and start again.
        progress: called with the number of proteins finished since the last call (a progress bar).
        engine: :class:`LocalEngine` (default) or :class:`retrieval.runners.ray.RayEngine`.
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
    target = _target(output, fasta)
    key = {"format": fmt, "db": db, "skip_invalid": skip_invalid, "options": dataclasses.asdict(config),
           "index_content": annotator.index.content_digest(),
           **{k: v for k, v in about.items() if k != "prot-retrieve"}}
    folder = Progress(target, key, fmt)
    done = folder.open(resume, restart)
    try:
        n = _run(annotator, engine, fasta, fmt, config, db, skip_invalid, progress, folder, done, about)
    except InputError as err:
        if not folder.parts:  # nothing finished: nothing to keep
            folder.remove()
            raise
        raise InputError(f"{err}; the {folder.proteins()} proteins done are kept in {folder.folder}") from None
    except RunFailed as err:
        raise RunFailed(f"{err}; {folder.proteins()} proteins are done and kept in {folder.folder}: run the "
                        "same command with --resume to finish") from None
    finally:
        folder.release()
    return RunSummary(n, done, time.perf_counter() - start)


def _run(annotator, engine, fasta, fmt, config, db, skip_invalid, progress, folder: Progress, done: int,
         about: dict) -> int:
    """The blocks not done yet, appended to the output; returns the protein count."""
    reader = FastaReader(fasta, skip_invalid=skip_invalid)
    records = iter(reader)
    skipped = sum(1 for _ in itertools.islice(records, done))  # the proteins an earlier run finished
    folder.check_input(reader.consumed_digest() if skipped == done else None)
    if progress and done:
        progress(done)
    cut = (Block(b, reader.consumed_digest()) for b in blocks(records, engine.block_size(config)))
    n = done
    with _Output(folder, fmt, about, db, config.taxon) as out:
        for block, table in engine.run(annotator, cut, config, about):
            out.add(block, table)
            return_freed_memory()
            n += len(block.records)
            if progress:
                progress(len(block.records))
    return n


class _Output:
    """Appends each block to the progress folder's output in the final format, then moves it to
    ``OUT`` when every block is done."""

    def __init__(self, folder: Progress, fmt: str, about: dict, db: str, taxon: str):
        self.folder, self.fmt, self.about, self.db, self.taxon = folder, fmt, about, db, taxon
        self._raw = self._text = self._writer = None

    def __enter__(self) -> "_Output":
        if self.fmt != "parquet":
            self._raw = self.folder.stream()
            self._text = io.TextIOWrapper(self._raw, encoding="utf-8")
            self._writer = PredictionWriter(self._text, self.fmt, self.about, self.db, self.taxon,
                                            started=bool(self.folder.parts))
        return self

    def add(self, block: Block, table: pd.DataFrame) -> None:
        if self.fmt == "parquet":
            with self.folder.part_stream() as fh:
                writer = PredictionWriter(fh, "parquet", self.about)
                writer.write(table)
                writer.close()
                fh.flush()
                os.fsync(fh.fileno())
            self.folder.add(len(block.records), 0, block.input_sha256)
            return
        self._writer.write(table, block.records)
        self.folder.add(len(block.records), self._sync(), block.input_sha256)

    def __exit__(self, kind, error, trace) -> None:
        try:
            if kind is None and self.fmt != "parquet":
                self._writer.close()
                self._sync()
        finally:
            if self._text is not None:
                self._text.close()
        if kind is None:
            self.folder.finish(self._merge)

    def _sync(self) -> int:
        """Flush the block to disk; where the output now ends."""
        self._text.flush()
        try:
            os.fsync(self._raw.fileno())
        except OSError as err:
            raise InputError(f"{self.folder.output}: writing failed ({err.strerror})") from None
        return self._raw.tell()

    def _merge(self, paths: list[Path], fh) -> None:
        """The Parquet parts as one file, one row group per block."""
        import pyarrow.parquet as pq

        merged = None
        for path in paths:
            table = pq.read_table(path)
            merged = merged or pq.ParquetWriter(fh, table.schema)
            merged.write_table(table)
        if merged is None:  # no protein: still a valid file with the columns
            PredictionWriter(fh, "parquet", self.about).close()
        else:
            merged.close()


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


def _target(output, fasta) -> Path:
    """The output file, refused when it would replace the input or cannot be written."""
    target = Path(os.path.realpath(output))
    if str(fasta) != "-" and target == Path(os.path.realpath(fasta)):
        raise InputError(f"{target}: the output would overwrite an input file")
    if target.is_dir() or not target.parent.is_dir() or not os.access(target.parent, os.W_OK):
        raise InputError(f"{target}: cannot write here (folder missing, not writable, or a folder)")
    return target


def _is_special(path) -> bool:
    """A device or FIFO: written in place, so there is nowhere to keep progress."""
    path = Path(os.path.realpath(path))
    return path.exists() and not path.is_file() and not path.is_dir()
