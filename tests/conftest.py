"""Shared fixtures: a toy ontology and tiny input files built here; nothing is downloaded."""
from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def toy_obo() -> Path:
    return DATA / "toy.obo"


@pytest.fixture(scope="session")
def toy_ontology(toy_obo):
    from index.ontology import Ontology

    return Ontology.from_obo(toy_obo)


@pytest.fixture
def write(tmp_path):
    """write(name, text) -> path of a new file in tmp_path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write


def shared_data() -> Path:
    """The real data folder beside the repository; slow tests skip when it is absent."""
    if not SHARED.exists():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED
