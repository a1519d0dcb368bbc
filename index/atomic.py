"""Artefact folders written all or nothing: build in a temporary sibling, then swap it into place.

A reader never sees a half-written folder and a stale file never survives a rebuild: the new folder
holds only what this build wrote. On Linux the swap is one ``renameat2(RENAME_EXCHANGE)`` call, so
the path names the old folder or the new one at every instant; elsewhere it is two renames.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from index.errors import InputError

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike, owner: str | None = None, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``target``; on success it replaces ``target``.

    On any exception (Ctrl-C and SIGTERM included, see :func:`retrieval.cli.main`) the temporary
    folder is removed and ``target`` is left as it was.

    Args:
        owner: the file that marks a folder as this kind of artefact (its manifest). An existing
            folder that holds files but not this one was not made by this tool, and is refused.
        overwrite: replace such a folder all the same.
    """
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    if target.exists() and not target.is_dir():
        raise InputError(f"{target}: exists and is not a folder")
    if owner and not overwrite and target.is_dir() and not (target / owner).is_file() and any(target.iterdir()):
        raise InputError(f"{target}: holds files that prot-retrieve did not write (no {owner}); choose another "
                         "-o, or --overwrite to replace the folder and everything in it")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
    except OSError as err:
        raise InputError(f"{target}: cannot write here ({err.strerror})") from None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes it private; a built folder is like any other
        _swap_into_place(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the new folder on failure, the old one after a swap


def _swap_into_place(new: Path, target: Path) -> None:
    """Put ``new`` at ``target``; afterwards ``new`` names the previous folder (if any)."""
    if not target.exists():
        os.rename(new, target)
        return
    if _exchange(new, target):
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.rename(target, old / "x")
    os.rename(new, target)
    os.rename(old / "x", new)
    old.rmdir()


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths with Linux's renameat2; False where it is not available."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    if not hasattr(libc, "renameat2"):
        return False
    done = libc.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return done == 0


def umask() -> int:
    """The process's umask (reading it means setting it, so it is set back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
