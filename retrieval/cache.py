"""What the cache holds (search databases, GO indexes, embeddings), and clearing it.

Everything in the cache rebuilds itself when next needed, so clearing it loses only time. Other
releases and other settings leave their entries behind: an MMseqs2 database of the shipped
references is about 1.2 GB per sensitivity, and no run removes one it does not read.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from index.errors import InputError
from retrieval.feature_cache import USE_LOCK, cache_dir, exclusive_cache

#: The kind of what prot-retrieve did not make: listed, never removed.
OTHER = "not prot-retrieve's"

#: Cache subfolders whose every item is one entry, and what they hold.
_FOLDERS = {"search": "search database", "proteins": "protein embeddings", "embeddings": "reference embeddings",
            "features": "text features", "backbone-digests": "backbone digests", "lenders": "lender table",
            "precision": "precision measurement", "int8": "int8 ranges"}


@dataclass
class CacheEntry:
    """One thing in the cache: a folder, or a file with its SQLite companions (``-wal``, ``-shm``)."""

    kind: str
    paths: list[Path]
    size: int  # bytes
    modified: float  # newest modification time of its files (seconds since the epoch)
    default: bool = False  # read by the default pipeline (see default_entries)

    @property
    def path(self) -> Path:
        return _base(self.paths[0])


def cache_entries() -> list[CacheEntry]:
    """Every entry under :func:`cache_dir`, biggest first; unfinished builds are their own kind."""
    root = cache_dir()
    groups: dict[tuple[str, Path], list[Path]] = {}
    for child in sorted(root.iterdir()) if root.is_dir() else []:
        if child.name == USE_LOCK:
            continue
        items = sorted(child.iterdir()) if child.name in _FOLDERS and child.is_dir() else [child]
        kind = _FOLDERS.get(child.name, "GO index" if child.name.startswith("go-index-") else OTHER)
        for item in items:
            if item.name.startswith(".") and item.name.endswith((".tmp", ".old")):
                groups.setdefault(("unfinished build", item), []).append(item)
            else:
                groups.setdefault((kind, _base(item)), []).append(item)
    entries = [CacheEntry(kind, paths, *_size_and_time(paths)) for (kind, _), paths in groups.items()]
    defaults = set(default_entries())
    for entry in entries:  # a default folder's items are all defaults
        entry.default = bool(defaults & {entry.path, *entry.path.parents})
    return sorted(entries, key=lambda e: -e.size)


def default_entries() -> list[Path]:
    """The entries the default pipeline reads: the shipped model's GO index, its lender table,
    protein embeddings and int8 ranges, and the search database of the shipped references (the
    shipped text tower records its backbone's digest, so no backbone digest is among them)."""
    from retrieval.config import AnnotateConfig
    from retrieval.embedding_store import EmbeddingStore
    from retrieval.homology import HomologySearch, SearchSettings
    from retrieval.homology.shipped import shipped_manifest, shipped_references
    from retrieval.indexing import shipped_meaning_digest
    from retrieval.models.int8_cnn import ranges_path
    from retrieval.models.retriever import RetrievalModel
    from retrieval.stages.lending import table_key

    root = cache_dir()
    model = RetrievalModel.from_pretrained(None)
    meaning = shipped_meaning_digest()
    references = [r["fingerprint"] for r in shipped_manifest().get("references", [])]
    paths = [root / f"go-index-{model.text_encoder.fingerprint()}",
             EmbeddingStore.file(root / "proteins", model.protein_encoder.cache_key(AnnotateConfig().precision)),
             root / "lenders" / f"{table_key(meaning, meaning, references)}.npz",
             ranges_path(model.protein_encoder.fingerprint())]
    try:
        paths.append(HomologySearch(shipped_references(), SearchSettings()).database.folder)
    except InputError:  # no search tool: nothing here is a default search database
        pass
    return paths


def clear(keep_defaults: bool = False) -> tuple[list[CacheEntry], list[CacheEntry]]:
    """Remove what prot-retrieve made in the cache (all, or all but what the default pipeline
    reads), never anything else, and only while no other prot-retrieve process uses the cache.

    Returns:
        (the entries removed, the entries kept).

    Raises:
        InputError: another prot-retrieve process is using the cache.
    """
    exclusive_cache()
    entries = cache_entries()
    gone = [e for e in entries if e.kind != OTHER and not (keep_defaults and e.default)]
    remove(gone)
    return gone, [e for e in entries if e not in gone]


def remove(entries: list[CacheEntry]) -> int:
    """Delete the entries; returns the bytes freed."""
    for entry in entries:
        for path in entry.paths:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
    return sum(e.size for e in entries)


def describe(entries: list[CacheEntry]) -> str:
    """The entries as an aligned table for people: kind, size, last modified, default, path."""
    rows = [("kind", "MB", "modified", "default", "path")]
    rows += [(e.kind, f"{e.size / 2**20:,.0f}", time.strftime("%Y-%m-%d", time.localtime(e.modified)),
              "yes" if e.default else "", str(e.path)) for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join([r[0].ljust(widths[0]), r[1].rjust(widths[1]), r[2].ljust(widths[2]),
                        r[3].ljust(widths[3]), r[4]]).rstrip() for r in rows]
    total = sum(e.size for e in entries)
    return "\n".join(lines + [f"{len(entries)} entries, {total / 2**30:.2f} GB in {cache_dir()}"])


def _base(path: Path) -> Path:
    """A SQLite file's companions belong to it."""
    for suffix in ("-wal", "-shm", "-journal"):
        if path.name.endswith(suffix):
            return path.with_name(path.name[: -len(suffix)])
    return path


def _size_and_time(paths: list[Path]) -> tuple[int, float]:
    size, modified = 0, 0.0
    for path in paths:
        files = [path] if not path.is_dir() else [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
        for f in files:
            stat = f.stat()
            size, modified = size + stat.st_size, max(modified, stat.st_mtime)
        modified = max(modified, path.stat().st_mtime)
    return size, modified
