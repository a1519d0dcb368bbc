"""Starting the web app: the pipeline loads in the job workers while the server already answers."""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from index.errors import InputError
from retrieval.pipeline import PipelineSpec
from retrieval.web.config import ServeConfig

LOG = logging.getLogger(__name__)


def serve(config: ServeConfig, spec: PipelineSpec) -> None:
    """Listen until stopped (Ctrl-C); jobs left unfinished resume at the next start."""
    missing = [m for m in ("fastapi", "uvicorn", "jinja2", "multipart", "pyarrow") if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(f"prot-retrieve serve needs {', '.join(missing)}: pip install 'prot-retrieve[web]'")
    config.check()
    _check_free(config.host, config.port)
    import uvicorn

    from retrieval.feature_cache import cache_dir
    from retrieval.web.app import create_app
    from retrieval.web.jobs import JobStore

    jobs = Path(config.jobs_dir) if config.jobs_dir else cache_dir() / "jobs"
    store = JobStore(jobs, spec.load, config.workers, config.search_block)
    app = create_app(config, store)
    LOG.warning("prot-retrieve serve: http://%s:%d/ (jobs in %s)", config.host, config.port, jobs)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning")


def _check_free(host: str, port: int) -> None:
    """One line, before anything loads, when the address cannot be listened on."""
    import socket

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, port))
    except OSError as err:
        raise InputError(f"--host {host} --port {port}: cannot listen there ({err.strerror})") from None
