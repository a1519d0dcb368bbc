"""``annotate --engine ray``: the same pipeline on Ray Data, over the cores of one machine or a cluster.

The driver reads the FASTA (validating it, as the local engine does) and puts it into Ray's object
store as Arrow tables of ``RayConfig.worker_block`` proteins: a dataset of (block, id, sequence,
header) rows, so no node needs the input file or a shared filesystem. ``map_batches`` sends the rows to a
pool of actors (``ActorPoolStrategy``); each actor loads the model, the index and the references
once, checks that they are the driver's (the same fingerprints), and annotates with the local
pipeline, homology search included, so the results are the local engine's. The driver receives one
pickled table per block and hands the blocks on in input order to the resumable run
(:mod:`retrieval.runners.local`), which writes the output.

A worker that dies is restarted and its block retried up to ``RayConfig.worker_restarts`` times;
past that the run fails with one line, the finished blocks stay in ``OUT.partial/`` and
``--resume`` continues from there.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import logging
import pickle
import socket
import warnings
from typing import Iterable, Iterator

import pandas as pd

from index.errors import InputError, RunFailed
from retrieval.annotate import Annotator
from retrieval.pipeline import PipelineSpec
from retrieval.config import AnnotateConfig, RayConfig
from retrieval.io.fasta import ProteinRecord
from retrieval.runners.local import Block

LOG = logging.getLogger(__name__)
_INPUT_ERROR = f"{InputError.__module__}.{InputError.__name__}: "


class RayEngine:
    """Annotates blocks of proteins on a pool of Ray actors; see the module docstring."""

    def __init__(self, config: RayConfig | None = None):
        if importlib.util.find_spec("ray") is None:
            raise InputError("--engine ray needs Ray: pip install 'prot-retrieve[ray]'")
        self.config = config or RayConfig()
        self.config.check()

    def block_size(self, config: AnnotateConfig) -> int:
        return self.config.worker_block

    def run(self, annotator: Annotator, parts: Iterable[Block], config: AnnotateConfig,
            about: dict) -> Iterator[tuple[Block, pd.DataFrame]]:
        """Each block with its predictions, in input order; ``about``: the driver's provenance, which
        every worker's annotator must match."""
        if annotator.spec is None:
            raise InputError("the Ray engine needs an Annotator made by Annotator.from_pretrained "
                             "(each worker loads the same one)")
        import ray

        started = _connect(self.config.address)
        try:
            workers = _workers(self.config)
            refs, kept = _put_blocks(parts, workers)
            if kept:
                yield from self._annotate(annotator.spec, refs, kept, workers, config, about)
        finally:
            if started:
                ray.shutdown()

    def _annotate(self, spec: PipelineSpec, refs: list, kept: list[Block], workers: int, config: AnnotateConfig,
                  about: dict) -> Iterator[tuple[Block, pd.DataFrame]]:
        import ray
        import ray.data

        # Ray Data logs a failed run's traceback; the one-line error says it unless -v
        logging.getLogger("ray.data").setLevel(logging.INFO if LOG.isEnabledFor(logging.INFO) else logging.CRITICAL)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the driver's own bar counts proteins
        context.execution_options.preserve_order = True
        restarts = {"max_restarts": self.config.worker_restarts, "max_task_retries": self.config.worker_restarts}
        with warnings.catch_warnings():  # Ray 2.60 names no parameter for restarts yet (hence ray<2.64)
            warnings.simplefilter("ignore", DeprecationWarning)
            # the worker's settings ride on its class: constructor arguments would sit in the object
            # store, where Ray warns that a restarted actor may not find them
            worker = type("AnnotateWorker", (_Worker,), {"setup": {
                "spec": spec, "config": config, "expected": about, "cpus": self.config.worker_cpus,
                "gpus": self.config.worker_gpus}})
            dataset = ray.data.from_arrow_refs(refs).map_batches(
                worker, compute=ray.data.ActorPoolStrategy(size=min(workers, len(kept))), batch_size=None,
                batch_format="pandas", num_cpus=self.config.worker_cpus, num_gpus=self.config.worker_gpus or None,
                **restarts)
        pending: dict[int, list[tuple[int, int, pd.DataFrame]]] = {}
        next_block = 0
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="pandas"):
                for row in batch.itertuples(index=False):
                    pending.setdefault(row.block, []).append((row.start, row.proteins, pickle.loads(row.table)))
                # blocks may arrive in pieces and out of order: hand them on whole and in order
                while next_block in pending and \
                        sum(p[1] for p in pending[next_block]) == len(kept[next_block].records):
                    pieces = sorted(pending.pop(next_block), key=lambda p: p[0])
                    yield kept[next_block], pd.concat([p[2] for p in pieces], ignore_index=True)
                    next_block += 1
        except ray.exceptions.RayError as err:
            # a worker's InputError (another model on a node) is bad input, not a crash; an actor
            # that died in its constructor only keeps the error's text
            cause = getattr(err, "cause", None)
            text = str(cause) if isinstance(cause, InputError) else _first_line(err)
            if isinstance(cause, InputError) or text.startswith(_INPUT_ERROR):
                raise InputError(text.removeprefix(_INPUT_ERROR)) from None
            raise RunFailed(f"a Ray worker failed ({text.split('. ')[0]})") from None
        if next_block != len(kept):
            raise RunFailed(f"Ray returned {next_block} of {len(kept)} blocks")


class _Worker:
    """One Ray actor: the annotator, loaded once, then one call per batch of rows."""

    setup: dict  # the arguments of _load, set on a subclass made per run

    def __init__(self):
        self._load(**self.setup)

    def _load(self, spec: PipelineSpec, config: AnnotateConfig, expected: dict, cpus: int, gpus: float) -> None:
        import torch

        from retrieval.runners.local import provenance

        torch.set_num_threads(cpus)
        self.annotator = spec.load(threads=cpus)
        if gpus and torch.cuda.is_available():
            self.annotator.model.protein_encoder.to("cuda")
        elif gpus:
            LOG.warning("worker on %s was given a GPU but torch sees none: the protein tower runs on CPU",
                        socket.gethostname())
        found = provenance(self.annotator, config.precision)
        # auto may choose another precision on another processor (scores move by under 0.002)
        differ = [f"{k} {found.get(k)!r} here, {v!r} on the driver" for k, v in expected.items()
                  if found.get(k) != v and k != "precision"]
        if differ:
            raise InputError(f"worker on {socket.gethostname()} loaded another pipeline ({'; '.join(differ)}): "
                             "install the same prot-retrieve, model and references on every node")
        self.config = config

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        from retrieval.runners.local import return_freed_memory

        out = []
        for block, rows in batch.groupby("block", sort=True):
            rows = rows.sort_values("position")
            records = [ProteinRecord(r.id, r.sequence, r.description, json.loads(r.tags), r.db, r.entry_name)
                       for r in rows.itertuples(index=False)]
            table = self.annotator.annotate(records, self.config)
            return_freed_memory()
            out.append({"block": block, "start": int(rows["position"].iloc[0]), "proteins": len(records),
                        "table": pickle.dumps(table, protocol=pickle.HIGHEST_PROTOCOL)})
        return pd.DataFrame(out)


def _put_blocks(parts: Iterable[Block], workers: int) -> tuple[list, list[Block]]:
    """The blocks' proteins as Arrow tables in Ray's object store; their refs, and the blocks as the
    driver keeps them (the headers without the sequences, for the output's GAF columns).

    An input smaller than a block per worker is split evenly instead, so that every worker has
    some (only the last piece then knows the input's digest). A worker's batch may hold several
    blocks or a piece of one: it groups its rows by block, and the driver puts the pieces of a block
    together by their first ``position``.
    """
    import pyarrow as pa
    import ray

    parts = iter(parts)
    head = list(itertools.islice(parts, workers))
    if head and (len(head) < workers or len(head[-1].records) < len(head[0].records)):  # the input ended
        digest = head[-1].input_sha256
        records = [r for b in head for r in b.records]
        size = max(1, -(-len(records) // workers))
        head = [Block(records[s: s + size]) for s in range(0, len(records), size)]
        head[-1].input_sha256 = digest
    refs: list = []
    kept: list[Block] = []
    for block in itertools.chain(head, parts):
        rows = block.records
        columns = {"block": [len(kept)] * len(rows), "position": list(range(len(rows))), "id": [r.id for r in rows],
                   "sequence": [r.sequence for r in rows], "description": [r.description for r in rows],
                   "tags": [json.dumps(r.tags) for r in rows], "db": [r.db for r in rows],
                   "entry_name": [r.entry_name for r in rows]}
        refs.append(ray.put(pa.table(columns)))
        kept.append(Block([dataclasses.replace(r, sequence="") for r in rows], block.input_sha256))
    return refs, kept


def _connect(address: str) -> bool:
    """Join the cluster at ``address`` (or the Ray this process already runs), else start one on
    this machine; True when this call started Ray (and the run should stop it)."""
    import ray

    if ray.is_initialized():
        return False
    if address and address != "auto":
        _check_answers(address)
    # Ray's own INFO and WARNING lines (token auth, execution plans) only with -v
    quiet = {"logging_level": logging.INFO if LOG.isEnabledFor(logging.INFO) else logging.ERROR,
             "log_to_driver": LOG.isEnabledFor(logging.INFO)}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            from retrieval.homology.settings import default_threads

            ray.init(num_cpus=default_threads(), include_dashboard=False, **quiet)
    except ConnectionError as err:
        raise InputError(f"--address {address}: {_first_line(err)}") from None
    return True


def _check_answers(address: str, timeout: float = 5.0) -> None:
    """A one-line error for an address nobody listens on (ray.init would wait for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"--address {address!r}: expected host:port (of `ray start --head`) or auto")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise InputError(f"--address {address}: no Ray cluster answers there ({err.strerror or err})") from None


def _workers(config: RayConfig) -> int:
    """``config.workers``, or as many as the cluster's CPUs (and GPUs, when workers take them) hold;
    never more than fit, since Ray would wait for resources that never come."""
    import ray

    resources = ray.cluster_resources()
    fit = int(resources.get("CPU", 0) // config.worker_cpus)
    if config.worker_gpus:
        fit = min(fit, int(resources.get("GPU", 0) // config.worker_gpus))
    if not fit:
        raise InputError(f"the Ray cluster has {resources.get('CPU', 0):g} CPUs and {resources.get('GPU', 0):g} GPUs: "
                         f"no room for a worker of {config.worker_cpus} CPUs and {config.worker_gpus:g} GPUs")
    if config.workers > fit:
        LOG.warning("--workers %d: the Ray cluster holds %d such workers; using %d", config.workers, fit, fit)
    return min(config.workers, fit) if config.workers else fit


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__
