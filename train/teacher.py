"""A teacher's vectors of many proteins, computed once and kept: UniRep's averaged hidden states of
the training and reference proteins, for distillation and for the teacher-kNN experiments.

The folder holds ``teacher.json`` (the model and the residue cut) and parts of at most ``part``
sequences (``part-00000.npz``: sequence keys and float32 vectors). A sequence is keyed by the hash
of its residues, so a protein in several files is computed once; a run that stops keeps its
finished parts and the next one computes only what is missing.
"""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from index.errors import InputError
from retrieval.embedding_store import sequence_key

log = logging.getLogger(__name__)


def teacher_key(sequence: str) -> str:
    """The embedding cache's key of a sequence, as text."""
    return sequence_key(sequence).hex()


@dataclass(frozen=True)
class TeacherSpec:
    model: str = "unirep"
    size: int = 256
    #: residues kept from the start of a sequence (the recurrence costs per residue)
    max_length: int = 1000


class TeacherVectors:
    """Cached teacher vectors in ``folder``, keyed by sequence."""

    def __init__(self, folder: str | Path, spec: TeacherSpec = TeacherSpec()):
        self.folder = Path(folder)
        self.spec = spec
        meta = self.folder / "teacher.json"
        if meta.exists():
            found = TeacherSpec(**json.loads(meta.read_text()))
            if found != spec:
                raise InputError(f"{self.folder}: holds vectors of {found}, not {spec}")
        self._keys: dict[str, tuple[int, int]] = {}
        self._parts: list[np.ndarray] = []
        for path in sorted(self.folder.glob("part-*.npz")):
            with np.load(path) as part:
                self._add(part["keys"], part["vectors"])

    @classmethod
    def existing(cls, folder: str | Path) -> "TeacherVectors":
        """The vectors in ``folder``, of the teacher it records."""
        try:
            spec = TeacherSpec(**json.loads(Path(folder, "teacher.json").read_text()))
        except (OSError, ValueError, TypeError):
            raise InputError(f"{folder}: not a folder of teacher vectors (no readable teacher.json)") from None
        return cls(folder, spec)

    def _add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        self._parts.append(vectors)
        for row, key in enumerate(keys):
            self._keys[str(key)] = (len(self._parts) - 1, row)

    def __contains__(self, sequence: str) -> bool:
        return teacher_key(sequence) in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def vectors(self, sequences: list[str]) -> np.ndarray:
        """(n, size) vectors of ``sequences`` (whole: the cut is the teacher's), each computed before."""
        missing = [s for s in sequences if s not in self]
        if missing:
            raise InputError(f"{self.folder}: {len(missing)} sequences have no teacher vector; run compute first")
        return np.stack([self._parts[p][r] for p, r in (self._keys[teacher_key(s)] for s in sequences)])

    def compute(self, sequences: list[str], part: int = 2000, progress=None) -> int:
        """Compute and keep the vectors of the ``sequences`` not yet here; returns how many."""
        from retrieval.models.unirep import UniRep

        todo = list(dict.fromkeys(s for s in sequences if s not in self))
        if not todo:
            return 0
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "teacher.json").write_text(json.dumps(asdict(self.spec), indent=2) + "\n")
        encoder = UniRep.from_package(self.spec.size)
        for start in range(0, len(todo), part):
            chunk = todo[start: start + part]
            vectors = encoder.encode([s[: self.spec.max_length] for s in chunk])
            keys = np.array([teacher_key(s) for s in chunk])
            number = len(self._parts)
            partial = self.folder / f".part-{number:05d}.npz"
            np.savez(partial, keys=keys, vectors=vectors)
            partial.rename(self.folder / f"part-{number:05d}.npz")  # whole parts only
            self._add(keys, vectors)
            if progress:
                progress(len(chunk))
            log.info("teacher vectors: %d of %d", min(start + part, len(todo)), len(todo))
        return len(todo)
