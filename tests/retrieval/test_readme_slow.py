"""The README's Python examples run as written (with the shipped model), and so does its CLI quick path."""
import re
from pathlib import Path

import pytest

from retrieval.models.retriever import DEFAULT_MODEL

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


@pytest.mark.skipif(not (DEFAULT_MODEL / "retriever.json").is_file(), reason="no shipped default model")
def test_readme_python_examples_run(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("PROT_RETRIEVE_CACHE", str(tmp_path / "cache"))
    blocks = python_blocks()
    assert blocks, "README has no python example"
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the documented examples themselves
    table = namespace["table"]
    assert set(table.columns) >= {"protein_id", "term_id", "score", "aspect", "name"}
    assert table.groupby("protein_id").size().max() <= 5
    found = namespace["found"]
    assert found.columns.tolist() == ["query", "rank", "protein_id", "score", "similarity"] and len(found) == 3
