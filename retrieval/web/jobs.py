"""Jobs of the web app: each a folder under the jobs directory, run in the background by worker
threads with the resumable runner, so that a job survives a restart of the server.

```
JOBS/<id>/                 id: 22 random URL-safe characters (unguessable)
  job.json                 state (queued, running, done, failed), options, counts, progress, error
  input.fasta              the sequences as submitted (validated before the job is made)
  predictions.parquet      the result, with its evidence columns (one row group per block)
  predictions.parquet.partial/   while it runs: the resumable progress (retrieval.runners.progress)
  proteins/                the job's protein index for text search, made on the first search
```
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from index.errors import InputError
from retrieval.config import AnnotateConfig

LOG = logging.getLogger(__name__)
JOB_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")
STATE, INPUT, RESULT, PROTEINS = "job.json", "input.fasta", "predictions.parquet", "proteins"
#: The options a job takes (the rest of AnnotateConfig is the server's).
JOB_OPTIONS = ("top", "aspect", "per_aspect", "specific", "min_score", "min_precision", "taxon")


class TooLarge(InputError):
    """An input over the server's limits (HTTP 413)."""


@dataclass
class Job:
    """What ``job.json`` holds."""

    id: str
    options: dict
    proteins: int
    residues: int
    name: str = ""
    state: str = "queued"  # queued | running | done | failed
    done: int = 0  # proteins annotated so far
    created: float = field(default_factory=time.time)
    finished: float = 0.0
    error: str = ""

    def config(self, search_block: int) -> AnnotateConfig:
        """How the job annotates: its options, with the evidence the page shows."""
        return AnnotateConfig(**self.options, explain=True, search_block=search_block)


class JobStore:
    """The jobs folder, its worker threads, and the pipeline they share.

    Args:
        folder: the jobs directory.
        load: makes an :class:`retrieval.annotate.Annotator` (called once per worker, in it).
        workers: jobs annotated at the same time.
        search_block: proteins per block of a job.
    """

    def __init__(self, folder: Path, load: Callable, workers: int = 1, search_block: int = 4096):
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InputError(f"{self.folder}: cannot keep jobs here ({err.strerror})") from None
        self._load, self.search_block = load, search_block
        self._queue: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()  # job.json writes
        self.annotators: list = []  # one per worker, loaded in it
        self.ready = threading.Event()  # set when the first worker's pipeline is loaded
        self.load_error = ""
        for job in sorted(self.jobs(), key=lambda j: j.created):  # interrupted by a restart: run again
            if job.state in ("queued", "running"):
                self._queue.put(job.id)
        self._threads = [threading.Thread(target=self._work, name=f"job-worker-{i}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    # --- jobs ---------------------------------------------------------------------------------
    def submit(self, fasta: bytes, options: dict, name: str = "", limits=None) -> Job:
        """Check the sequences and the options, make the job and queue it.

        Raises:
            InputError: bad sequences or options; :class:`TooLarge`: over ``limits``.
        """
        from retrieval.io.fasta import FastaReader

        config = dataclasses.replace(AnnotateConfig(), **{k: v for k, v in options.items() if k in JOB_OPTIONS})
        config.check()
        job_id = secrets.token_urlsafe(16)
        folder = self.folder / f".{job_id}.tmp"
        folder.mkdir()
        try:
            (folder / INPUT).write_bytes(fasta)
            proteins = residues = 0
            for record in FastaReader(folder / INPUT):
                proteins += 1
                residues += len(record.sequence)
                if limits is not None and (proteins > limits.max_proteins or residues > limits.max_residues):
                    raise TooLarge(f"more than {limits.max_proteins} proteins or {limits.max_residues} residues: "
                                   "split the input, or start the server with larger --max-proteins / --max-residues")
            job = Job(job_id, {k: getattr(config, k) for k in JOB_OPTIONS}, proteins, residues, name[:200])
            self._write(job, folder)
            os.rename(folder, self.folder / job_id)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self._queue.put(job_id)
        return job

    def get(self, job_id: str) -> Job:
        """The job, read from its folder.

        Raises:
            KeyError: no such job (or not a job id at all: ids never become paths unchecked).
        """
        if not JOB_ID.match(job_id or ""):
            raise KeyError(job_id)
        try:
            return Job(**json.loads((self.folder / job_id / STATE).read_text()))
        except (OSError, ValueError, TypeError):
            raise KeyError(job_id) from None

    def jobs(self) -> list[Job]:
        found = []
        for child in self.folder.iterdir() if self.folder.is_dir() else []:
            try:
                found.append(self.get(child.name))
            except KeyError:
                continue
        return found

    def path(self, job: Job, name: str) -> Path:
        """A file of the job's folder, by one of this module's names."""
        assert name in (INPUT, RESULT, PROTEINS)
        return self.folder / job.id / name

    def expire(self, keep_days: float) -> int:
        """Delete the jobs created more than ``keep_days`` ago (not the ones running); returns how many."""
        limit, gone = time.time() - keep_days * 86400, 0
        for job in self.jobs():
            if job.created < limit and job.state in ("done", "failed"):
                shutil.rmtree(self.folder / job.id, ignore_errors=True)
                gone += 1
        return gone

    # --- running ------------------------------------------------------------------------------
    def _work(self) -> None:
        try:
            annotator = self._load()
        except Exception as err:  # noqa: BLE001 - every job then says why it cannot run
            self.load_error = str(err).splitlines()[0] if str(err) else type(err).__name__
            LOG.error("the pipeline did not load: %s", self.load_error)
            annotator = None
        else:
            self.annotators.append(annotator)
        self.ready.set()
        while True:
            job_id = self._queue.get()
            try:
                job = self.get(job_id)
            except KeyError:  # deleted meanwhile
                continue
            if annotator is None:
                job.state, job.error, job.finished = "failed", f"the pipeline did not load: {self.load_error}", time.time()
                self._write(job)
            else:
                self._run(annotator, job)

    def _run(self, annotator, job: Job) -> None:
        from retrieval.runners.local import annotate_file

        job.state = "running"
        self._write(job)
        last = [0.0]

        def progress(n: int) -> None:
            job.done += n
            if time.time() - last[0] > 0.5:  # a state file per half second is plenty for a progress bar
                last[0] = time.time()
                self._write(job)

        job.done = 0
        try:
            annotate_file(annotator, self.path(job, INPUT), self.path(job, RESULT), "parquet",
                          job.config(self.search_block), resume=True, progress=progress)
            job.state = "done"
        except Exception as err:  # noqa: BLE001 - a job's failure is reported on its page, the server goes on
            job.state, job.error = "failed", str(err).splitlines()[0] if str(err) else type(err).__name__
            LOG.warning("job %s failed: %s", job.id, job.error)
        job.finished = time.time()
        self._write(job)

    def _write(self, job: Job, folder: Path | None = None) -> None:
        folder = folder or self.folder / job.id
        with self._lock:
            tmp = folder / f".{STATE}.{threading.get_ident()}.tmp"
            tmp.write_text(json.dumps(dataclasses.asdict(job)))
            os.replace(tmp, folder / STATE)
