import os

from click.testing import CliRunner

import retrieval.cache as cache_module
from index.errors import InputError
from retrieval.cache import cache_entries, default_entries
from retrieval.cli import main


def _write(path, size):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def _fake_cache(root):
    _write(root / "search" / "mmseqs-s7.5-aaaa" / "db", 3000)
    _write(root / "search" / "mmseqs-s7.5-aaaa" / "done", 0)
    _write(root / "search" / "mmseqs-s5.7-bbbb" / "db.idx", 5000)
    _write(root / "search" / ".mmseqs-s5.7-cccc.x1.tmp" / "db", 70)  # a build that was interrupted
    _write(root / "proteins" / "0123.sqlite", 400)
    _write(root / "proteins" / "0123.sqlite-wal", 100)  # belongs to the file above
    _write(root / "features" / "minilm.npz", 250)
    _write(root / "go-index-ffff" / "index.faiss", 900)
    _write(root / "backbone-digests" / "stamp", 16)
    _write(root / "int8" / "abcd.json", 8)
    return {"old search": root / "search" / "mmseqs-s7.5-aaaa", "search": root / "search" / "mmseqs-s5.7-bbbb",
            "index": root / "go-index-ffff", "digests": root / "backbone-digests"}


def test_cache_lists_every_entry_with_its_size_kind_and_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("PROT_RETRIEVE_CACHE", str(tmp_path))
    named = _fake_cache(tmp_path)
    monkeypatch.setattr(cache_module, "default_entries", lambda: [named["search"], named["index"], named["digests"]])
    entries = {str(e.path.relative_to(tmp_path)): e for e in cache_entries()}
    assert {k: (e.kind, e.size, e.default) for k, e in entries.items()} == {
        "search/mmseqs-s5.7-bbbb": ("search database", 5000, True),
        "search/mmseqs-s7.5-aaaa": ("search database", 3000, False),
        "go-index-ffff": ("GO index", 900, True),
        "proteins/0123.sqlite": ("protein embeddings", 500, False),
        "features/minilm.npz": ("text features", 250, False),
        "search/.mmseqs-s5.7-cccc.x1.tmp": ("unfinished build", 70, False),
        "backbone-digests/stamp": ("backbone digests", 16, True),
        "int8/abcd.json": ("int8 ranges", 8, False),
    }
    assert [e.size for e in cache_entries()] == [5000, 3000, 900, 500, 250, 70, 16, 8]  # biggest first


def test_cache_command_lists_and_clears_keeping_the_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("PROT_RETRIEVE_CACHE", str(tmp_path))
    named = _fake_cache(tmp_path)
    monkeypatch.setattr(cache_module, "default_entries", lambda: [named["search"], named["index"], named["digests"]])
    listed = CliRunner().invoke(main, ["cache"])
    assert listed.exit_code == 0 and "8 entries" in listed.output and "mmseqs-s7.5-aaaa" in listed.output
    cleared = CliRunner().invoke(main, ["cache", "--clear", "--keep-defaults"])
    assert cleared.exit_code == 0 and "removed 5 entries" in cleared.output and "kept 3" in cleared.output
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file() and p.name != ".in-use")
    assert left == ["backbone-digests/stamp", "go-index-ffff/index.faiss", "search/mmseqs-s5.7-bbbb/db.idx"]
    assert CliRunner().invoke(main, ["cache", "--clear"]).exit_code == 0
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [".in-use"]  # the lock of processes using it


def test_empty_or_missing_cache_lists_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("PROT_RETRIEVE_CACHE", str(tmp_path / "never made"))
    monkeypatch.setattr(cache_module, "default_entries", lambda: [])
    assert cache_entries() == []
    assert "0 entries" in CliRunner().invoke(main, ["cache"]).output


def test_default_entries_are_where_the_default_pipeline_caches(tmp_path, monkeypatch):
    """The shipped model's GO index folder, and the search database the default search would build."""
    from retrieval.homology import HomologySearch, SearchSettings
    from retrieval.homology.shipped import shipped_references
    from retrieval.models.int8_cnn import ranges_path
    from retrieval.models.retriever import RetrievalModel

    monkeypatch.setenv("PROT_RETRIEVE_CACHE", str(tmp_path))
    paths = default_entries()
    model = RetrievalModel.from_pretrained(None)
    assert tmp_path / f"go-index-{model.text_encoder.fingerprint()}" in paths
    assert ranges_path(model.protein_encoder.fingerprint()) in paths
    assert all(str(p).startswith(str(tmp_path)) for p in paths)
    # loading the model loaded no text backbone (its digest is recorded), built nothing (--precision
    # auto may have measured)
    assert set(os.listdir(tmp_path)) - {".in-use", "precision"} == set()
    try:
        expected = HomologySearch(shipped_references(), SearchSettings()).database.folder
    except InputError:  # no search tool here
        return
    assert expected in paths
