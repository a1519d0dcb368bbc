"""Interrupted runs: killed mid-way, resumed to the same output; a resume of another run is refused."""
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


def killed_after_parts(tmp_path, args, parts: int) -> None:
    """Run annotate in a subprocess and SIGKILL it once ``parts`` blocks are on disk."""
    script = tmp_path / "slow.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(ROOT)!r})
        import retrieval.run as run
        real = run.Partial.add
        def add(self, table, proteins):
            real(self, table, proteins)
            if len(self.parts) == {parts}:
                open({str(tmp_path / "marker")!r}, "w").write("x")
                time.sleep(60)
        run.Partial.add = add
        from retrieval.cli import main
        main()
    """))
    process = subprocess.Popen([sys.executable, str(script), *args], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "marker").exists() and time.time() < deadline and process.poll() is None:
        time.sleep(0.1)
    assert (tmp_path / "marker").exists(), process.stderr.read() if process.poll() is not None else "timeout"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


@pytest.mark.parametrize("fmt", ["tsv", "jsonl"])
def test_a_killed_run_resumes_to_the_output_of_an_uninterrupted_one(setup, fmt):
    from retrieval.cli import main

    tmp_path, args = setup
    whole = tmp_path / f"whole.{fmt}"
    assert CliRunner().invoke(main, [*args, "--format", fmt, "-o", str(whole)]).exit_code == 0
    out = tmp_path / f"out.{fmt}"
    killed_after_parts(tmp_path, [*args, "--format", fmt, "-o", str(out)], parts=2)
    assert not out.exists()  # nothing that looks complete
    partial = tmp_path / f"out.{fmt}.partial"
    assert sorted(p.name for p in partial.iterdir()) == ["manifest.json", "part-00000.tsv", "part-00001.tsv"]
    result = CliRunner().invoke(main, [*args, "--format", fmt, "-o", str(out), "--resume"])
    assert result.exit_code == 0, result.output
    assert "annotated 4 proteins, 2 of them done before" in result.output
    assert out.read_text() == whole.read_text() and not partial.exists()


def test_a_resume_of_another_run_or_of_a_changed_part_is_refused(setup):
    from retrieval.cli import main

    tmp_path, args = setup
    out = tmp_path / "out.tsv"
    killed_after_parts(tmp_path, [*args, "-o", str(out)], parts=1)
    partial = tmp_path / "out.tsv.partial"
    result = CliRunner().invoke(main, [*args, "-o", str(out), "--resume", "--top", "5"])
    assert result.exit_code == 2 and "belongs to another run (options differ)" in result.output
    (tmp_path / "in.fa").write_text((tmp_path / "in.fa").read_text() + ">P5\nMKV\n")
    result = CliRunner().invoke(main, [*args, "-o", str(out), "--resume"])
    assert result.exit_code == 2 and "input_sha256" in result.output
    (tmp_path / "in.fa").write_text("".join(f">{k}\n{v}\n" for k, v in PROTEINS.items()))
    part = partial / "part-00000.tsv"
    part.write_text(part.read_text()[:-5])  # truncated
    result = CliRunner().invoke(main, [*args, "-o", str(out), "--resume"])
    assert result.exit_code == 2 and "was changed or truncated" in result.output and not out.exists()
    result = CliRunner().invoke(main, [*args, "-o", str(out)])  # without --resume: starts again
    assert result.exit_code == 0 and out.exists() and not partial.exists()


def test_resume_needs_an_output_file(setup):
    from retrieval.cli import main

    _, args = setup
    result = CliRunner().invoke(main, [*args, "--resume"])
    assert result.exit_code == 2 and "--resume needs an output file" in result.output
