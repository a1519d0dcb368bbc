"""The names a protein tower's backbone goes by, checked without importing torch: the training
options are validated by code that ``prot-retrieve --help`` loads."""
from __future__ import annotations

from index.errors import InputError

COMPACT = "compact"
UNIREP = "unirep-"  # + a size: frozen UniRep (retrieval.models.unirep)
UNIREP_SIZES = (64, 256, 1900)


def unirep_size(size: int | str) -> int:
    """``size`` as one of the published UniRep models' sizes.

    Raises:
        InputError: there is no such model.
    """
    if str(size) not in map(str, UNIREP_SIZES):
        raise InputError(f"UniRep comes in sizes {', '.join(map(str, UNIREP_SIZES))} (got {size})")
    return int(size)
