import json

import click
from click.testing import CliRunner

from retrieval.cli import main


def test_train_options_come_from_the_config_dataclass():
    result = CliRunner().invoke(main, ["train", "--help"])
    assert result.exit_code == 0
    for flag in ("--lora-rank", "--quantization", "--gradient-checkpointing", "--resume", "--exclude-tag"):
        assert flag in result.output


def test_train_reports_missing_inputs_in_one_line(tmp_path):
    for flag in ("--output", "-o"):  # -o as in every other command that writes a folder
        result = CliRunner().invoke(main, ["train", flag, str(tmp_path / "run")])
        assert result.exit_code == 2 and "training needs --fasta" in result.output and "Traceback" not in result.output
    (tmp_path / "c.json").write_text(json.dumps({"epochs": 2, "bogus": 1}))
    result = CliRunner().invoke(main, ["train", "--config", str(tmp_path / "c.json")])
    assert result.exit_code == 2 and "unknown training option(s) ['bogus']" in result.output


def test_product_commands_are_on_the_same_group():
    # through the group's interface: main.commands holds the training commands only once one was loaded
    ctx = click.Context(main)
    names = {"annotate", "build-index", "evaluate", "train", "train-reranker"}
    assert names <= set(main.list_commands(ctx)) and all(main.get_command(ctx, n) for n in names)
