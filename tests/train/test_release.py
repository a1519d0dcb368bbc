"""refresh --download against a local HTTP server on loopback that serves small real-format files:
fetched once, checked against the published MD5, refused when it does not match, one line offline."""
import gzip
import hashlib
import http.server
import socket
import threading
from functools import partial
from pathlib import Path

import pytest
from click.testing import CliRunner

from index.errors import InputError
from train.release import download_release

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def mirror(tmp_path, toy_obo):
    """A loopback server of go-basic.obo, uniprot_sprot.dat.gz and RELEASE.metalink; yields (url,
    the served folder, the list of paths requested)."""
    served = tmp_path / "served"
    served.mkdir()
    (served / "go-basic.obo").write_bytes(toy_obo.read_bytes())
    dat = gzip.compress((DATA / "annotations" / "sample.dat").read_bytes())
    (served / "uniprot_sprot.dat.gz").write_bytes(dat)
    (served / "RELEASE.metalink").write_text(
        f'<metalink><files><file name="uniprot_sprot.dat.gz"><size>{len(dat)}</size><verification>'
        f'<hash type="md5">{hashlib.md5(dat).hexdigest()}</hash></verification></file></files></metalink>')
    requested = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            requested.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served, requested
    server.shutdown()


def test_release_files_are_fetched_once_and_checked(mirror, tmp_path):
    url, served, requested = mirror
    files = download_release(tmp_path / "release", url, progress=False)
    assert files["go-basic.obo"].read_bytes() == (served / "go-basic.obo").read_bytes()
    assert files["uniprot_sprot.dat.gz"].read_bytes() == (served / "uniprot_sprot.dat.gz").read_bytes()
    requested.clear()
    download_release(tmp_path / "release", url, progress=False)  # the .dat matches its MD5: kept
    assert "/uniprot_sprot.dat.gz" not in requested and "/go-basic.obo" in requested  # GO has no checksum


def test_a_file_that_does_not_match_its_checksum_is_refused(mirror, tmp_path):
    url, served, _ = mirror
    (served / "uniprot_sprot.dat.gz").write_bytes(gzip.compress(b"ID   changed\n//\n"))
    with pytest.raises(InputError, match="uniprot_sprot.dat.gz"):
        download_release(tmp_path / "release", url, progress=False)


def test_offline_is_one_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    from retrieval.cli import main

    result = CliRunner().invoke(main, ["refresh", "--download", str(tmp_path / "r"), "--release-url",
                                       f"http://127.0.0.1:{closed}", "-o", str(tmp_path / "p")])
    assert result.exit_code == 2 and "cannot download" in result.output and "no internet" in result.output
    result = CliRunner().invoke(main, ["refresh", "-o", str(tmp_path / "p")])
    assert result.exit_code == 2 and "needs --obo and --sequences" in result.output
