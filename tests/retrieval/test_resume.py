"""Interrupted runs: killed mid-way, resumed to the same output; a resume of another run is refused;
a second run on the same output meets a lock; the progress folder is never lost without --restart."""
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
PROTEINS = {"P1": "MKVLAAGIVWACDEFGHIK", "P2": "ACDEFGHIKLMNPQRSTVWY", "P3": "MMMKKKVVVLLLAAGG",
            "P4": "MSTNPKPQRKTKRNTNRRPQDVKFPGG"}


@pytest.fixture
def setup(tmp_path, saved_pipeline):
    (tmp_path / "in.fa").write_text("".join(f">{k}\n{v}\n" for k, v in PROTEINS.items()))
    args = ["annotate", str(tmp_path / "in.fa"), "--model", str(tmp_path / "model"), "--index", str(tmp_path / "index"),
            "--search-block", "1", "--top", "3"]
    return tmp_path, args


def stopped_after_parts(tmp_path, args, parts: int, pause: float = 60, env=None) -> subprocess.Popen:
    """Run the command ``args`` in a subprocess, asleep for ``pause`` seconds once ``parts`` blocks
    of its output are on disk."""
    script = tmp_path / "slow.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        import retrieval.runners.progress as progress
        real = progress.Progress.add
        def add(self, *args):
            real(self, *args)
            if len(self.parts) == {parts}:
                open({str(tmp_path / "marker")!r}, "w").write("x")
                time.sleep({pause})
        progress.Progress.add = add
        from retrieval.cli import main
        main()
    """))
    process = subprocess.Popen([sys.executable, str(script), *args], stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 120
    while not (tmp_path / "marker").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.1)
    assert (tmp_path / "marker").exists(), process.stderr.read() if process.poll() is not None else "timeout"
    (tmp_path / "marker").unlink()
    return process


def killed_after_parts(tmp_path, args, parts: int) -> None:
    """Run annotate in a subprocess and SIGKILL it once ``parts`` blocks are on disk."""
    process = stopped_after_parts(tmp_path, args, parts)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


def _read(path, fmt):
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pandas()
    return path.read_bytes()


@pytest.mark.parametrize("fmt", ["tsv", "jsonl", "cafa", "parquet"])
def test_a_killed_run_resumes_to_the_output_of_an_uninterrupted_one(setup, fmt):
    from retrieval.cli import main

    tmp_path, args = setup
    whole = tmp_path / f"whole.{fmt}"
    assert CliRunner().invoke(main, [*args, "--format", fmt, "-o", str(whole)]).exit_code == 0
    out = tmp_path / f"out.{fmt}"
    killed_after_parts(tmp_path, [*args, "--format", fmt, "-o", str(out)], parts=2)
    assert not out.exists()  # nothing that looks complete
    partial = tmp_path / f"out.{fmt}.partial"
    kept = ["part-00000.parquet", "part-00001.parquet"] if fmt == "parquet" else ["output"]
    assert sorted(p.name for p in partial.iterdir()) == sorted([".lock", "manifest.json", *kept])
    result = CliRunner().invoke(main, [*args, "--format", fmt, "-o", str(out), "--resume"])
    assert result.exit_code == 0, result.output
    assert "annotated 4 proteins, 2 of them done before" in result.output
    if fmt == "parquet":
        import pandas as pd

        pd.testing.assert_frame_equal(_read(out, fmt), _read(whole, fmt))
    else:
        assert out.read_bytes() == whole.read_bytes()
    assert not partial.exists()


def test_a_resume_of_another_run_or_of_a_changed_part_is_refused(setup):
    from retrieval.cli import main

    tmp_path, args = setup
    out = tmp_path / "out.tsv"
    killed_after_parts(tmp_path, [*args, "-o", str(out)], parts=1)
    partial = tmp_path / "out.tsv.partial"
    result = CliRunner().invoke(main, [*args, "-o", str(out), "--resume", "--top", "5"])
    assert result.exit_code == 2 and "belongs to another run (options differ)" in result.output
    # another index of the same model (the same text tower: only its content tells them apart)
    lines = (tmp_path / "functions.tsv").read_text().splitlines(keepends=True)
    (tmp_path / "fewer.tsv").write_text("".join(lines[:-1]))
    built = CliRunner().invoke(main, ["build-index", str(tmp_path / "fewer.tsv"), "-o", str(tmp_path / "fewer"),
                                      "--model", str(tmp_path / "model"), "--precision", "fp32"])
    assert built.exit_code == 0, built.output
    for other, what in ((["--index", str(tmp_path / "fewer")], "index_content"), (["--precision", "fp32"], "precision")):
        result = CliRunner().invoke(main, [*args, "-o", str(out), "--resume", *other])
        assert result.exit_code == 2 and "belongs to another run" in result.output and what in result.output, other
    original = (tmp_path / "in.fa").read_text()
    (tmp_path / "in.fa").write_text(original.replace("MKVLAAGIVW", "MKVLAAGIVY"))  # the finished protein changed
    result = CliRunner().invoke(main, [*args, "-o", str(out), "--resume"])
    assert result.exit_code == 2 and "the input changed since the interrupted run" in result.output
    (tmp_path / "in.fa").write_text(original)
    output = partial / "output"
    output.write_bytes(output.read_bytes()[:-5])  # truncated
    result = CliRunner().invoke(main, [*args, "-o", str(out), "--resume"])
    assert result.exit_code == 2 and "was changed or truncated" in result.output and not out.exists()
    result = CliRunner().invoke(main, [*args, "-o", str(out)])  # without --resume: kept, and said so
    assert result.exit_code == 2 and "holds an interrupted run (1 proteins done)" in result.output
    assert partial.is_dir()
    result = CliRunner().invoke(main, [*args, "-o", str(out), "--restart"])
    assert result.exit_code == 0 and out.exists() and not partial.exists()


def test_a_resumed_run_over_a_longer_input_adds_the_new_proteins(setup):
    """The input is checked up to the proteins done: proteins appended since are annotated too, and
    the output is that of a whole run over the longer input."""
    from retrieval.cli import main

    tmp_path, args = setup
    out = tmp_path / "out.tsv"
    killed_after_parts(tmp_path, [*args, "-o", str(out)], parts=2)
    with open(tmp_path / "in.fa", "a") as fh:
        fh.write(">P5\nMKVWWWLLLAAACDE\n")
    result = CliRunner().invoke(main, [*args, "-o", str(out), "--resume"])
    assert result.exit_code == 0 and "annotated 5 proteins, 2 of them done before" in result.output
    whole = tmp_path / "whole.tsv"
    assert CliRunner().invoke(main, [*args, "-o", str(whole)]).exit_code == 0
    assert out.read_bytes() == whole.read_bytes()


def test_a_second_run_on_the_same_output_meets_the_lock(setup):
    """While a run writes OUT, another run on OUT fails in one line and touches nothing; once the
    first is gone (killed: the lock goes with it), --resume continues its work."""
    from retrieval.cli import main

    tmp_path, args = setup
    out = tmp_path / "out.tsv"
    process = stopped_after_parts(tmp_path, [*args, "-o", str(out)], parts=1)
    try:
        before = (tmp_path / "out.tsv.partial" / "manifest.json").read_text()
        for extra in ([], ["--resume"], ["--restart"]):
            result = CliRunner().invoke(main, [*args, "-o", str(out), *extra])
            assert result.exit_code == 2 and "another run is writing it now" in result.output, (extra, result.output)
        assert (tmp_path / "out.tsv.partial" / "manifest.json").read_text() == before
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    result = CliRunner().invoke(main, [*args, "-o", str(out), "--resume"])
    assert result.exit_code == 0 and "1 of them done before" in result.output


def test_a_progress_folder_it_did_not_make_is_never_touched(setup):
    from retrieval.cli import main

    tmp_path, args = setup
    out = tmp_path / "out.tsv"
    mine = tmp_path / "out.tsv.partial"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for extra in ([], ["--resume"], ["--restart"]):
        result = CliRunner().invoke(main, [*args, "-o", str(out), *extra])
        assert result.exit_code == 2 and "was not made by prot-retrieve" in result.output, extra
    assert (mine / "notes.txt").read_text() == "keep me"
    mine_file = tmp_path / "file.tsv.partial"
    mine_file.write_text("a file")
    result = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "file.tsv")])
    assert result.exit_code == 2 and "is not a progress folder" in result.output and mine_file.read_text() == "a file"


def test_resume_needs_an_output_file(setup):
    from retrieval.cli import main

    _, args = setup
    result = CliRunner().invoke(main, [*args, "--resume"])
    assert result.exit_code == 2 and "--resume needs an output file" in result.output
