"""``prot-retrieve serve``: the web page and its JSON API (FastAPI), over one shared pipeline.

Pages are rendered on the server (Jinja2, every value escaped) with a little JavaScript
(``static/app.js``, which builds the DOM from text, never from HTML); the graph library is vendored
in ``static/vendor`` (cytoscape.js with the dagre layout, MIT), so nothing loads from elsewhere.
Bad input gets the command line's one-line message with a 4xx status. Routes are listed with their
schemas at ``/docs`` (OpenAPI); docs/web.md describes them.
"""
from __future__ import annotations

import gzip
import io
import json
import logging
import secrets
import threading
import time
from pathlib import Path

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, Field

from index.errors import InputError
from retrieval.config import OUTPUT_FORMATS
from retrieval.web import results
from retrieval.web.config import ServeConfig
from retrieval.web.jobs import INPUT, JOB_OPTIONS, PROTEINS, RESULT, Job, JobStore, TooLarge

LOG = logging.getLogger(__name__)
HERE = Path(__file__).parent
TOKEN_COOKIE = "prot_retrieve_token"


class SearchRequest(BaseModel):
    query: str = Field(..., description="A function in words, e.g. 'binds heme and carries oxygen'.")
    top: int = Field(10, ge=1, le=1000, description="Proteins to return.")


class AnnotateRequest(BaseModel):
    fasta: str = Field(..., description="Protein sequences in FASTA.")
    top: int = Field(20, ge=1)
    aspect: str = ""
    per_aspect: bool = False
    specific: bool = False
    min_score: float = 0.0
    min_precision: float = 0.0
    taxon: str = ""


def create_app(config: ServeConfig, store: JobStore) -> FastAPI:
    """The web app over a job store (whose workers hold the pipeline)."""
    config.check()
    app = FastAPI(title="prot-retrieve", description="Protein function prediction: jobs, results, text search.",
                  version=_version())
    app.state.config, app.state.store = config, store
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(pages)
    app.include_router(api)
    _errors(app)
    _token(app, config.token)
    _expiry(store, config.keep_days)
    return app


pages, api = APIRouter(include_in_schema=False), APIRouter(prefix="/api")
TEMPLATES = Jinja2Templates(directory=str(HERE / "templates"))  # autoescapes every value


def _store(request: Request) -> JobStore:
    return request.app.state.store


def _job(request: Request, job_id: str) -> Job:
    try:
        return _store(request).get(job_id)
    except KeyError:
        raise HTTPException(404, "no such job (it may have expired)") from None


def _finished(request: Request, job_id: str) -> tuple[Job, Path]:
    job = _job(request, job_id)
    if job.state != "done":
        raise HTTPException(409, f"the job is {job.state}, not done")
    return job, _store(request).path(job, RESULT)


def _annotator(request: Request):
    store = _store(request)
    if not store.ready.wait(timeout=120) or store.load_error:
        raise HTTPException(503, f"the pipeline is not loaded ({store.load_error or 'still loading'})")
    return store.annotators[0]


def _table(result: Path):
    return results.table(result, result.stat().st_mtime)


# --- pages ------------------------------------------------------------------------------------
@pages.get("/", response_class=HTMLResponse)
def home(request: Request):
    return TEMPLATES.TemplateResponse(request, "index.html", {"limits": request.app.state.config})


@pages.post("/jobs")
async def submit_page(request: Request):
    job = await _submit(request)
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


@pages.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str):
    return TEMPLATES.TemplateResponse(request, "job.html", {"job": _job(request, job_id), "formats": OUTPUT_FORMATS})


# --- API ----------------------------------------------------------------------------------------
@api.post("/jobs", status_code=201, summary="Submit a job",
          description="multipart/form-data: `fasta` (text) or `file` (a FASTA, plain or .gz), `name`, and the options "
                      f"{', '.join(JOB_OPTIONS)}; or JSON with the same keys. Returns the job.")
async def submit(request: Request) -> dict:
    job = await _submit(request)
    return {**_status(job), "url": f"/jobs/{job.id}"}


@api.get("/jobs/{job_id}", summary="A job's status and progress")
def status(request: Request, job_id: str) -> dict:
    return _status(_job(request, job_id))


@api.get("/jobs/{job_id}/proteins", summary="The job's proteins, with their best prediction")
def proteins(request: Request, job_id: str) -> list[dict]:
    return results.proteins(_table(_finished(request, job_id)[1]))


@api.get("/jobs/{job_id}/predictions", summary="One protein's predictions with their evidence")
def predictions(request: Request, job_id: str, protein: str) -> list[dict]:
    rows = results.protein_rows(_table(_finished(request, job_id)[1]), protein)
    if not rows:
        raise HTTPException(404, f"no predictions for protein {protein!r} in this job")
    return rows


@api.get("/jobs/{job_id}/graph", summary="One protein's predicted GO terms and their ancestors")
def graph(request: Request, job_id: str, protein: str) -> dict:
    return results.go_graph(_annotator(request).index, predictions(request, job_id, protein))


@api.get("/jobs/{job_id}/results.{fmt}", summary="The predictions in an output format",
         description="The file `prot-retrieve annotate --format FMT` writes for the same input and options "
                     "(`explain=true`: with the evidence columns; GAF: `db` as annotate's --db).")
def download(request: Request, job_id: str, fmt: str, explain: bool = False, db: str = "") -> Response:
    if fmt not in OUTPUT_FORMATS:
        raise HTTPException(404, f"no format {fmt!r} (one of {', '.join(OUTPUT_FORMATS)})")
    job, result = _finished(request, job_id)
    out = io.BytesIO() if fmt == "parquet" else io.StringIO()
    results.render(result, _store(request).path(job, INPUT), fmt, out, explain, db, job.options.get("taxon", ""))
    body = out.getvalue()
    return Response(body if isinstance(body, bytes) else body.encode(), media_type=results.MEDIA[fmt],
                    headers={"Content-Disposition": f'attachment; filename="predictions.{fmt}"'})


@api.post("/jobs/{job_id}/search", summary="The job's proteins ranked for a function in words")
async def search(request: Request, job_id: str, body: SearchRequest) -> list[dict]:
    job, _ = _finished(request, job_id)
    found = await run_in_threadpool(_search, _store(request), job, _annotator(request), body.query, body.top)
    return found.to_dict(orient="records")


@api.post("/jobs/{job_id}/catalogue", summary="The job's proteins scored against your own functions",
          description="multipart/form-data `file`: a functions.tsv (term_id, name, description, aspect).")
async def catalogue(request: Request, job_id: str) -> dict:
    job, _ = _finished(request, job_id)
    config, pipeline = request.app.state.config, _annotator(request)
    form = await request.form(max_part_size=config.max_bytes)
    upload = form.get("file")
    if upload is None or isinstance(upload, str):
        raise InputError("send the catalogue as the multipart field 'file' (a functions.tsv)")
    text = await _read_capped(upload, config.max_bytes)
    return await run_in_threadpool(_score_catalogue, _store(request), job, pipeline, text, config.max_functions)


@api.post("/annotate", summary="Annotate a few proteins at once (synchronous)")
async def annotate_now(request: Request, body: AnnotateRequest) -> list[dict]:
    from retrieval.io.fasta import FastaReader

    pipeline, limit = _annotator(request), request.app.state.config.sync_proteins
    records = _records(body.fasta.encode(), FastaReader)
    if len(records) > limit:
        raise TooLarge(f"{len(records)} proteins: /api/annotate takes {limit} at most; submit a job (/api/jobs) for "
                       "more")
    options = {k: getattr(body, k) for k in JOB_OPTIONS}
    table = await run_in_threadpool(pipeline.annotate, records, None, embedding_cache=False, **options)
    return table.to_dict(orient="records")


async def _submit(request: Request) -> Job:
    """A job from a form (pasted ``fasta`` or uploaded ``file``, options) or a JSON body."""
    config, store = request.app.state.config, _store(request)
    length = int(request.headers.get("content-length") or 0)
    if length > config.max_bytes + 1_000_000:  # the form's own fields take a little room
        raise TooLarge(f"the request has {length} bytes; this server takes {config.max_bytes} at most (--max-bytes)")
    if request.headers.get("content-type", "").startswith("application/json"):
        fields = json.loads(await _read_body(request, config.max_bytes) or b"{}")
        if not isinstance(fields, dict):
            raise InputError("the JSON body must be an object with 'fasta' and options")
        data = str(fields.get("fasta", "")).encode()
    else:
        fields = dict(await request.form(max_part_size=config.max_bytes))
        upload = fields.pop("file", None)
        data = await _read_capped(upload, config.max_bytes) if upload is not None and not isinstance(upload, str) \
            and upload.filename else str(fields.get("fasta", "")).encode()
    if not data.strip():
        raise InputError("no sequences: paste FASTA or upload a file")
    if data[:2] == b"\x1f\x8b":
        data = _gunzip_capped(data, config.max_bytes)
    options = _options({k: v for k, v in fields.items() if k in JOB_OPTIONS})
    if options.get("min_precision"):  # the model must have thresholds for it
        _annotator(request).selection.thresholds(options["min_precision"])
    return await run_in_threadpool(store.submit, data, options, str(fields.get("name", "")), config)


def _options(raw: dict) -> dict:
    """Form fields (strings) or JSON values as the job's typed options."""
    from retrieval.config import AnnotateConfig

    defaults, out = AnnotateConfig(), {}
    for key, value in raw.items():
        kind = type(getattr(defaults, key))
        if kind is bool:
            out[key] = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "on", "yes")
        elif value in ("", None) and kind is not str:
            continue
        else:
            try:
                out[key] = kind(value)
            except (TypeError, ValueError):
                raise InputError(f"option {key}: {value!r} is not a {kind.__name__}") from None
    return out


async def _read_capped(upload, limit: int) -> bytes:
    """An upload read in pieces, refused as soon as it passes ``limit`` bytes."""
    async def pieces():
        while piece := await upload.read(1 << 20):
            yield piece

    return await _capped(pieces(), limit)


async def _read_body(request: Request, limit: int) -> bytes:
    return await _capped(request.stream(), limit)


async def _capped(pieces, limit: int) -> bytes:
    chunks, size = [], 0
    async for piece in pieces:
        size += len(piece)
        if size > limit:
            raise TooLarge(f"the upload passes {limit} bytes (--max-bytes)")
        chunks.append(piece)
    return b"".join(chunks)


def _gunzip_capped(data: bytes, limit: int) -> bytes:
    out, size = [], 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            while piece := fh.read(1 << 20):
                size += len(piece)
                if size > limit:
                    raise TooLarge(f"the file passes {limit} bytes once uncompressed (--max-bytes)")
                out.append(piece)
    except (OSError, EOFError) as err:
        raise InputError(f"the .gz upload is corrupt or truncated ({err})") from None
    return b"".join(out)


def _records(data: bytes, reader) -> list:
    """Validated records of FASTA bytes (the reader names the record and line of a problem)."""
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".fasta") as fh:
        fh.write(data)
        fh.flush()
        return list(reader(fh.name))


def _search(store: JobStore, job: Job, annotator, query: str, top: int):
    """The job's proteins for ``query``: the protein index (with homology profiles when the pipeline
    has references) is made on the first search and kept in the job's folder."""
    from retrieval.io.fasta import read_fasta
    from retrieval.protein_index import ProteinIndex

    folder = store.path(job, PROTEINS)
    model = annotator.model
    if (folder / "index_config.json").is_file():
        index = ProteinIndex.load(folder, model)
    else:
        homology = annotator if annotator.reranking.homology else None
        # without the embedding cache: its database connection belongs to the job worker's thread
        index = ProteinIndex.build(model, read_fasta(store.path(job, INPUT)), progress=False, annotator=homology,
                                   embedding_cache=False)
        index.save(folder)
    return index.search(model, [query], top=min(top, index.index.ntotal), lenders=annotator.index)


def _score_catalogue(store: JobStore, job: Job, annotator, text: bytes, max_functions: int) -> dict:
    """Every protein of the job scored against an uploaded catalogue (its functions borrow from GO)."""
    import tempfile

    from index.catalogue import FunctionCatalogue
    from retrieval.annotate import Annotator
    from retrieval.indexing import build_function_index
    from retrieval.io.fasta import read_fasta

    with tempfile.NamedTemporaryFile(suffix=".tsv") as fh:
        fh.write(text)
        fh.flush()
        catalogue = FunctionCatalogue.from_tsv(fh.name)
    if len(catalogue) > max_functions:
        raise TooLarge(f"{len(catalogue)} functions: this server scores {max_functions} at most (--max-functions)")
    index = build_function_index(annotator.model, catalogue, progress=False)
    mine = Annotator(annotator.model, index, annotator.homology, lenders=annotator.index)
    scores = mine.score(read_fasta(store.path(job, INPUT)), catalogue)
    return {"functions": [{"term_id": t, "name": n} for t, n in zip(catalogue.ids, catalogue.table["name"])],
            "proteins": list(scores.index), "scores": scores.round(6).to_numpy().tolist()}


def _status(job: Job) -> dict:
    return {"id": job.id, "state": job.state, "proteins": job.proteins, "done": job.done, "name": job.name,
            "created": job.created, "finished": job.finished, "error": job.error, "options": job.options}


def _errors(app: FastAPI) -> None:
    """Bad input: the one-line message, 4xx; never a stack trace."""

    @app.exception_handler(InputError)
    async def bad_input(request: Request, err: InputError):
        return JSONResponse({"error": str(err)}, status_code=413 if isinstance(err, TooLarge) else 400)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError):
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid')}".strip(": ")}, status_code=422)

    @app.exception_handler(HTTPException)
    async def http(request: Request, err: HTTPException):
        return JSONResponse({"error": err.detail}, status_code=err.status_code)

    @app.exception_handler(ValueError)  # a malformed JSON body or form
    async def malformed(request: Request, err: ValueError):
        return JSONResponse({"error": f"malformed request ({str(err).splitlines()[0][:200]})"}, status_code=400)


def _token(app: FastAPI, token: str) -> None:
    """With a token, every request carries it: a Bearer header, or a cookie that ``?token=`` sets."""
    if not token:
        return

    @app.middleware("http")
    async def check(request: Request, call_next):
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip() \
            or request.cookies.get(TOKEN_COOKIE, "") or request.query_params.get("token", "")
        if not secrets.compare_digest(given.encode(), token.encode()):
            return JSONResponse({"error": "this server needs its token (Authorization: Bearer TOKEN, or ?token=)"},
                                status_code=401)
        response = await call_next(request)
        if request.query_params.get("token"):
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return response


def _expiry(store: JobStore, keep_days: float) -> None:
    def sweep():
        while True:
            gone = store.expire(keep_days)
            if gone:
                LOG.info("deleted %d jobs older than %g days", gone, keep_days)
            time.sleep(3600)

    threading.Thread(target=sweep, name="job-expiry", daemon=True).start()


def _version() -> str:
    from importlib import metadata

    return metadata.version("prot-retrieve")
