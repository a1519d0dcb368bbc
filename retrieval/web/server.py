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
    import uvicorn

    from retrieval.feature_cache import cache_dir
    from retrieval.web.app import create_app
    from retrieval.web.jobs import JobStore

    jobs = Path(config.jobs_dir) if config.jobs_dir else cache_dir() / "jobs"
    store = JobStore(jobs, spec.load, config.workers, config.search_block)
    app = create_app(config, store)
    LOG.warning("prot-retrieve serve: http://%s:%d/ (jobs in %s)", config.host, config.port, jobs)
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning")
