"""Artefact folders and output files are written all or nothing, even when the process is killed."""
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from index.atomic import atomic_folder
from index.errors import InputError

ROOT = Path(__file__).resolve().parents[2]


def test_a_rebuild_keeps_no_stale_file(tmp_path):
    target = tmp_path / "artefact"
    with atomic_folder(target) as tmp:
        (tmp / "a.txt").write_text("old")
        (tmp / "dag.tsv").write_text("stale edges")
    with atomic_folder(target) as tmp:
        (tmp / "a.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["a.txt"] and (target / "a.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artefact"]  # no temporary sibling left
    assert oct(target.stat().st_mode & 0o777) != oct(0o700)  # not mkdtemp's private mode


def test_a_failed_build_leaves_the_previous_folder(tmp_path):
    target = tmp_path / "artefact"
    with atomic_folder(target) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as tmp:
            (tmp / "a.txt").write_text("half")
            raise RuntimeError("disk full")
    assert (target / "a.txt").read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["artefact"]
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        with atomic_folder(tmp_path / "file"):
            pass


# A build that writes one file, says so, then waits to be killed before writing the next.
BUILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from index.atomic import atomic_folder
    target, marker = Path(sys.argv[1]), Path(sys.argv[2])
    with atomic_folder(target) as tmp:
        (tmp / "index.faiss").write_text("new vectors")
        marker.write_text("half-way")
        time.sleep(60)
        (tmp / "terms.tsv").write_text("new terms")
""")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
@pytest.mark.parametrize("previous", [True, False])
def test_a_build_killed_mid_write_leaves_the_previous_folder_or_none(tmp_path, how, previous):
    target, marker = tmp_path / "index", tmp_path / "marker"
    if previous:
        target.mkdir()
        (target / "index.faiss").write_text("old vectors")
        (target / "terms.tsv").write_text("old terms")
    script = tmp_path / "build.py"
    script.write_text(BUILD.format(root=str(ROOT)) if how == signal.SIGKILL else
                      BUILD.format(root=str(ROOT)).replace("import sys, time", "import signal, sys, time\n"
                                                           "signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))"))
    process = subprocess.Popen([sys.executable, str(script), str(target), str(marker)])
    deadline = time.time() + 30
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the build never started writing"
    process.send_signal(how)
    process.wait(timeout=30)
    if previous:
        assert sorted(p.name for p in target.iterdir()) == ["index.faiss", "terms.tsv"]
        assert (target / "index.faiss").read_text() == "old vectors"
    else:
        assert not target.exists()
    leftovers = {p.name for p in tmp_path.iterdir()} - {"index", "marker", "build.py"}
    if how == signal.SIGTERM:  # unwound: the temporary folder is gone too (SIGKILL cannot be caught)
        assert leftovers == set()


def test_the_cli_removes_its_temporary_output_on_sigterm(tmp_path):
    """SIGTERM while annotate writes its output: no output file, no temporary file, exit code 143."""
    slow = tmp_path / "slow.py"
    slow.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        import retrieval.io.writers as writers
        real = writers.PredictionWriter.write
        def write(self, chunk, records=None):
            real(self, chunk, records)
            open({str(tmp_path / "marker")!r}, "w").write("x")
            time.sleep(60)
        writers.PredictionWriter.write = write
        from retrieval.cli import main
        main()
    """))
    (tmp_path / "in.fa").write_text(">P1\nMKVLAAGIVWACDEFGHIK\n")
    out = tmp_path / "out.tsv"
    process = subprocess.Popen([sys.executable, str(slow), "annotate", str(tmp_path / "in.fa"), "--no-reference",
                                "-o", str(out)], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "marker").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.1)
    assert (tmp_path / "marker").exists(), process.stderr.read() if process.poll() is not None else "timeout"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 143 and "Terminated." in process.stderr.read()
    # No output and no temporary file; the progress folder stays, for --resume (tests/retrieval/test_resume.py).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.fa", "marker", "out.tsv.partial", "slow.py"]
    assert sorted(p.name for p in (tmp_path / "out.tsv.partial").iterdir()) == [".lock", "manifest.json", "output"]
