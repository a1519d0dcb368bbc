"""The web app in a real headless Chromium (Debian's, driven by Playwright): paste -> progress ->
results, the evidence, the GO picture, a download equal to `annotate`'s file, a text search, and a
`<script>` in a protein id shown as text and never run. Screenshots go to $TEST_ARTIFACTS (else the
test's temporary folder). Without Chromium the tests skip, unless $PROT_RETRIEVE_REQUIRE_BROWSER is
set (CI sets it, so there a missing browser fails)."""
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi", reason="the web app is an extra: pip install 'prot-retrieve[web]'")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if not os.environ.get("PROT_RETRIEVE_REQUIRE_BROWSER"):
    pytest.importorskip("playwright", reason="browser tests need playwright (pip install 'prot-retrieve[test]')")
    if CHROMIUM is None:
        pytest.skip("browser tests need Debian's chromium (apt-get install chromium chromium-driver)",
                    allow_module_level=True)

from playwright.sync_api import sync_playwright  # noqa: E402

from retrieval.cli import main  # noqa: E402
from test_web import _free_port, _get, serve  # noqa: E402

HOSTILE = ["<script>window.pwned=1</script>", "<img/src=x/onerror=window.pwned=2>"]
FASTA = ("".join(f">{name}\nMKVLAAGIVWACDEFGHIKLMNPQRSTVWY{i * 'W'}\n" for i, name in enumerate(HOSTILE))
         + ">P3 OX=9606\nMMMKKKVVVLLLAAGGWWWACDE\n")


@pytest.fixture
def server(saved_pipeline, tmp_path):
    port = _free_port()
    process = serve(saved_pipeline, tmp_path / "jobs", port)
    try:
        assert _get(port, "/").status_code == 200
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def page():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic"])
        page = browser.new_page(viewport={"width": 1300, "height": 1100})
        page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
        yield page
        browser.close()


def artifact(tmp_path: Path, name: str) -> str:
    folder = Path(os.environ.get("TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / name)


def test_paste_progress_results_evidence_graph_download_and_search(server, page, saved_pipeline, tmp_path):
    page.goto(server)
    page.screenshot(path=artifact(tmp_path, "web_submit.png"), full_page=True)
    page.fill("#fasta", FASTA)
    page.fill("input[name=top]", "4")
    page.click("button[type=submit]")
    page.wait_for_url("**/jobs/*")
    page.wait_for_selector("#protein-list li", timeout=120_000)
    assert page.inner_text("#progress-text") == "done: 3 proteins"
    # the hostile ids are text in the list and in the title, and ran nothing
    assert page.locator("#protein-list button.protein").all_inner_texts() == [*HOSTILE, "P3"]
    assert page.evaluate("window.pwned") is None
    # by the list's own button: a bare text=P3 also matches the random job id shown in the title
    page.click("#protein-list button.protein:text-is('P3')")
    page.wait_for_function("document.querySelector('#protein-title').textContent === 'P3'")
    page.wait_for_selector("#aspects table.predictions tbody tr")
    rows = page.locator("#aspects tbody tr")
    assert rows.count() == 4
    assert all(text.startswith("towers ") for text in page.locator(".evidence").all_inner_texts())  # no references
    job_id = page.url.rsplit("/", 1)[1]
    graph = page.request.get(f"{server}/api/jobs/{job_id}/graph?protein=P3").json()
    page.wait_for_function(f"window.goGraph && window.goGraph.nodes().length === {len(graph['nodes'])}")
    assert page.evaluate("window.goGraph.edges().length") == len(graph["edges"]) > 0
    page.screenshot(path=artifact(tmp_path, "web_results.png"), full_page=True)
    # the downloaded TSV is annotate's file
    with page.expect_download() as download:
        page.click(".downloads a:text-is('tsv')")
    got = tmp_path / "downloaded.tsv"
    download.value.save_as(got)
    (tmp_path / "in.fa").write_text(FASTA)
    model, index = saved_pipeline
    expected = tmp_path / "cli.tsv"
    ran = CliRunner().invoke(main, ["annotate", str(tmp_path / "in.fa"), "--model", str(model), "--index", str(index),
                                    "--top", "4", "--search-block", "1", "-o", str(expected)])
    assert ran.exit_code == 0 and got.read_bytes() == expected.read_bytes()
    # a function in words ranks the protein the search machinery ranks first
    expected_first = page.request.post(f"{server}/api/jobs/{job_id}/search",
                                       data={"query": "kinase activity", "top": 3}).json()[0]["protein_id"]
    page.fill("#query", "kinase activity")
    page.click("#search-form button")
    page.wait_for_selector("#search-results tbody tr")
    assert page.locator("#search-results tbody tr").first.locator("td").nth(1).inner_text() == expected_first
    assert page.evaluate("window.pwned") is None
    page.screenshot(path=artifact(tmp_path, "web_search.png"), full_page=True)


def test_the_page_shows_a_bad_input_in_one_line(server, page):
    response = page.request.post(f"{server}/api/jobs", multipart={"fasta": ">P1\nMK9V\n"})
    assert response.status == 400 and "invalid residue '9'" in response.json()["error"]
    page.goto(f"{server}/jobs/{'x' * 22}")
    assert "no such job" in page.content()
