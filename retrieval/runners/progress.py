"""The progress folder of one ``annotate -o OUT`` run, ``OUT.partial/``: the output so far, written
in its final format block after block, and what a resumed run must check.

```
OUT.partial/
  .lock          held (flock) by the run writing here: a second run meets it with one line
  manifest.json  the run's recipe, and per finished block: its proteins, the byte where it ends in
                 output, the sha256 of its bytes, and the sha256 of the input read up to it
  output         the output so far (Parquet: part-00000.parquet ... one per block, merged at the end)
```
The folder is made whole (lock and manifest inside) and then renamed into place, so another
process never sees it half made. Only when every block is done is ``output`` renamed to ``OUT``
and the folder removed: an interrupted run never leaves an output that looks complete. A folder
of that name that this tool did not make (no manifest) is never touched. Resuming checks the
recipe (every field, both ways), every finished block's bytes, and that the input still begins
with the proteins already done; it then cuts ``output`` back to the last finished block.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from index.atomic import umask
from index.errors import InputError

LOG = logging.getLogger(__name__)
MANIFEST, LOCK, OUTPUT = "manifest.json", ".lock", "output"


@dataclass
class Part:
    """A finished block in the manifest."""

    proteins: int
    end: int  # byte of the output where the block ends (Parquet: 0, the block has its own file)
    sha256: str  # of the block's bytes
    input_sha256: str | None  # of the input read up to the block's last protein (None: not known)


class Progress:
    """``OUTPUT.partial/`` for a run with recipe ``key`` writing format ``fmt``."""

    def __init__(self, output: Path, key: dict, fmt: str):
        self.output, self.key, self.fmt = Path(output), key, fmt
        self.folder = self.output.with_name(self.output.name + ".partial")
        self.parts: list[Part] = []
        self._lock: int | None = None

    # --- opening ------------------------------------------------------------------------------
    def open(self, resume: bool, restart: bool) -> int:
        """Take the folder (making it when there is none); returns the proteins already done.

        Raises:
            InputError: another run holds it; it holds an interrupted run and neither ``resume``
                nor ``restart`` was given; it is not a progress folder of this tool; the resumed
                run's recipe or finished blocks differ.
        """
        if self.folder.is_symlink() or (self.folder.exists() and not self.folder.is_dir()):
            raise InputError(f"{self.folder}: exists and is not a progress folder of prot-retrieve; remove it "
                             "or choose another -o")
        if not self.folder.exists() and self._create():
            return 0
        self._take_lock()
        manifest = self._read_manifest()
        if manifest is None:
            self.release()
            raise InputError(f"{self.folder}: exists and was not made by prot-retrieve (no {MANIFEST}); remove it "
                             "or choose another -o")
        done = sum(p["proteins"] for p in manifest.get("parts", []))
        if restart:
            LOG.warning("%s: discarding an interrupted run (%d proteins done), as --restart asks", self.folder, done)
            self._wipe()
            self._save()
            return 0
        if not resume:
            self.release()
            raise InputError(f"{self.folder} holds an interrupted run ({done} proteins done): --resume continues it, "
                             "--restart discards it")
        return self._resume(manifest)

    def _create(self) -> bool:
        """Make the folder, locked and with its manifest, then rename it into place; False when
        another process made one first."""
        try:
            tmp = Path(tempfile.mkdtemp(prefix=f".{self.folder.name}.", dir=self.folder.parent))
        except OSError as err:
            raise InputError(f"{self.folder.parent}: cannot write here ({err.strerror})") from None
        try:
            self._lock = _locked(tmp / LOCK)
            self._save(tmp)
            os.chmod(tmp, 0o777 & ~umask())
            try:
                os.rename(tmp, self.folder)
            except OSError:  # made meanwhile by another run
                self.release()
                shutil.rmtree(tmp, ignore_errors=True)
                return False
        except BaseException:
            self.release()
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return True

    def _take_lock(self) -> None:
        try:
            self._lock = _locked(self.folder / LOCK)
        except BlockingIOError:
            raise InputError(f"{self.output}: another run is writing it now ({self.folder} is locked); wait for it "
                             "or choose another -o") from None
        except OSError as err:
            raise InputError(f"{self.folder}: cannot use it ({err.strerror})") from None

    def _read_manifest(self) -> dict | None:
        path = self.folder / MANIFEST
        if not path.is_file():
            return None
        try:
            manifest = json.loads(path.read_text())
            if not isinstance(manifest, dict) or not isinstance(manifest.get("parts"), list):
                raise ValueError("not a manifest")
            return manifest
        except (ValueError, OSError, UnicodeDecodeError):
            self.release()
            raise InputError(f"{path}: corrupt; --restart discards the interrupted run") from None

    def _resume(self, manifest: dict) -> int:
        recorded = manifest.get("key", {})
        changed = sorted(k for k in set(recorded) | set(self.key) if recorded.get(k) != self.key.get(k))
        if changed or manifest.get("format") != self.fmt:
            self.release()
            what = ", ".join(changed) or "format"
            raise InputError(f"--resume: {self.folder} belongs to another run ({what} differ); --restart discards it")
        try:
            self.parts = [Part(**p) for p in manifest["parts"]]
        except TypeError:
            self.release()
            raise InputError(f"{self.folder / MANIFEST}: corrupt; --restart discards the interrupted run") from None
        self._check_parts()
        LOG.warning("resuming: %d proteins done in %d block(s)", self.proteins(), len(self.parts))
        return self.proteins()

    def _check_parts(self) -> None:
        """Every finished block's bytes as recorded; the output cut back to the last of them."""
        for i, part in enumerate(self.parts):
            path, start = self._part_file(i)
            try:
                with open(path, "rb") as fh:
                    fh.seek(start)
                    data = fh.read(part.end - start if self.fmt != "parquet" else -1)
            except OSError:
                data = b""
            if hashlib.sha256(data).hexdigest() != part.sha256:
                self.release()
                raise InputError(f"--resume: {path} was changed or truncated since it was written; --restart "
                                 "discards the interrupted run")
        if self.fmt != "parquet":
            with open(self.folder / OUTPUT, "ab") as fh:
                fh.truncate(self.parts[-1].end if self.parts else 0)

    def check_input(self, read_digest: str | None) -> None:
        """After reading the proteins already done: the input must still begin with them."""
        expected = self.parts[-1].input_sha256 if self.parts else None
        if self.parts and (expected is None or read_digest != expected):
            self.release()
            raise InputError(f"--resume: the input changed since the interrupted run (its first {self.proteins()} "
                             "proteins are not the ones done); --restart discards it")

    # --- writing ------------------------------------------------------------------------------
    def proteins(self) -> int:
        return sum(p.proteins for p in self.parts)

    def stream(self) -> IO[bytes]:
        """The output so far, open for appending (text formats)."""
        return open(self.folder / OUTPUT, "ab")

    def part_stream(self) -> IO[bytes]:
        """A new file for the next block (Parquet)."""
        return open(self._part_file(len(self.parts))[0], "wb")

    def add(self, proteins: int, end: int, input_digest: str | None) -> None:
        """Record a finished block, whose bytes end at ``end`` (flushed and synced by the caller)."""
        path, start = self._part_file(len(self.parts))
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read(end - start if self.fmt != "parquet" else -1)
        self.parts.append(Part(proteins, end, hashlib.sha256(data).hexdigest(), input_digest))
        self._save()

    def finish(self, merge=None) -> None:
        """Move the whole output to ``OUT`` (``merge(paths, fh)`` joins Parquet parts) and remove the folder."""
        final = self.folder / OUTPUT
        if self.fmt == "parquet":
            with open(final, "wb") as fh:
                merge([self._part_file(i)[0] for i in range(len(self.parts))], fh)
        os.chmod(final, 0o666 & ~umask())
        try:
            os.replace(final, self.output)
        except OSError as err:
            raise InputError(f"{self.output}: cannot write here ({err.strerror})") from None
        self.remove()

    def remove(self) -> None:
        """Delete the folder (bad input: nothing to resume)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.release()

    def release(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing the descriptor releases the lock
            self._lock = None

    def _part_file(self, i: int) -> tuple[Path, int]:
        """(file, first byte) of block ``i``."""
        if self.fmt == "parquet":
            return self.folder / f"part-{i:05d}.parquet", 0
        return self.folder / OUTPUT, self.parts[i - 1].end if i else 0

    def _wipe(self) -> None:
        for child in self.folder.iterdir():
            if child.name in (MANIFEST, OUTPUT) or child.name.startswith("part-"):
                child.unlink()
        self.parts = []

    def _save(self, folder: Path | None = None) -> None:
        folder = folder or self.folder
        manifest = {"key": self.key, "format": self.fmt, "parts": [vars(p) for p in self.parts]}
        tmp = folder / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, folder / MANIFEST)


def _locked(path: Path) -> int:
    """An exclusive, non-blocking flock on ``path`` (made if missing); the lock goes with the process."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~umask())
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    return fd
