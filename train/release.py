"""Fetching the current release files (``refresh --download``), with pooch: the GO OBO and UniProt's
Swiss-Prot flat file. A file already in the folder is not fetched again when it matches the
release's checksum (UniProt publishes MD5s in ``RELEASE.metalink``; GO publishes none, so its file
is fetched afresh each time). Without internet, one line says which address could not be reached.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from index.errors import InputError

LOG = logging.getLogger(__name__)
GO_URL = "https://purl.obolibrary.org/obo/go/go-basic.obo"
UNIPROT_URL = "https://ftp.uniprot.org/pub/databases/uniprot/current_release/knowledgebase/complete/"
#: (file, where it is) of a release; ``--release-url`` puts them all under one address (a mirror).
RELEASE = {"go-basic.obo": GO_URL, "uniprot_sprot.dat.gz": UNIPROT_URL + "uniprot_sprot.dat.gz"}
_MD5 = re.compile(r'<file name="([^"]+)">.*?<hash type="md5">([0-9a-f]{32})</hash>', re.S)


def download_release(folder: str | os.PathLike, mirror: str | None = None, progress: bool = True) -> dict[str, Path]:
    """The release files in ``folder``, fetched where missing or stale: {name: path}.

    Raises:
        InputError: an address cannot be reached, or a file does not match its published checksum.
    """
    import pooch
    import requests

    folder = Path(folder)
    urls = {name: f"{mirror.rstrip('/')}/{name}" if mirror else url for name, url in RELEASE.items()}
    metalink = f"{mirror.rstrip('/')}/RELEASE.metalink" if mirror else UNIPROT_URL + "RELEASE.metalink"
    try:
        md5 = dict(_MD5.findall(requests.get(metalink, timeout=30).text))
    except requests.RequestException:
        md5 = {}
    found = {}
    for name, url in urls.items():
        known = f"md5:{md5[name]}" if name in md5 else None
        if known is None and (folder / name).exists():
            (folder / name).unlink()  # no checksum to trust it by: fetched again
        try:
            found[name] = Path(pooch.retrieve(url, known_hash=known, fname=name, path=folder, progressbar=progress))
        except requests.RequestException as err:
            raise InputError(f"cannot download {url} ({type(err).__name__}): no internet here? Give the files "
                             "with --obo and --sequences instead") from None
        except ValueError as err:  # pooch: the hash does not match
            raise InputError(f"{url}: {str(err).splitlines()[0]}") from None
    return found
