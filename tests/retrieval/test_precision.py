"""--precision auto: chosen from the processor's capabilities (replaced here by fakes) and a cached
micro-benchmark; an explicit precision wins; the choice is reported."""
import json

import pytest
import torch

from index.errors import InputError
from retrieval.models import precision as P
from retrieval.config import AnnotateConfig
from retrieval.models.int8_cnn import int8_supported

ZEN4 = {"cpu_name": "AMD EPYC 9654", "avx2": True, "fma3": True, "f16c": True, "avx512_f": True, "avx512_bf16": True}
ZEN3 = {"cpu_name": "AMD EPYC 7763", "avx2": True, "fma3": True, "f16c": True}
SKYLAKE = {"cpu_name": "Intel Xeon Gold 6148", "avx2": True, "fma3": True, "avx512_f": True}  # AVX-512, no BF16
SAPPHIRE = {"cpu_name": "Intel Xeon Platinum 8480", "avx2": True, "avx512_f": True, "amx_bf16": True}


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """machine(capabilities, onednn=True, fp32=1.0, bf16=0.5, int8=None) fakes this processor (int8:
    the int8 convolutions' seconds, None: torch has no int8 kernels); returns the list of
    measurements actually run."""
    monkeypatch.setenv("PROT_RETRIEVE_CACHE", str(tmp_path))
    monkeypatch.setattr(P.platform, "machine", lambda: "x86_64")
    for var in P.ISA_LIMITS:
        monkeypatch.delenv(var, raising=False)
    measured = []

    def fake(capabilities, onednn=True, fp32=1.0, bf16=0.5, int8=None):
        monkeypatch.setattr(P, "_capabilities", lambda: dict(capabilities))
        monkeypatch.setattr(P, "_onednn_bf16", lambda: onednn)
        monkeypatch.setattr(P, "_model_name", lambda caps: caps.get("cpu_name", "unknown"))
        monkeypatch.setattr(P, "int8_supported", lambda: int8 is not None)
        seconds = {"fp32": fp32, "bf16": bf16, "int8": int8}
        monkeypatch.setattr(P, "_time_workload", lambda kind: measured.append(kind) or seconds[kind])
        P.processor.cache_clear()
        P._auto.cache_clear()
        return measured

    yield fake
    P.processor.cache_clear()
    P._auto.cache_clear()


def test_native_bf16_that_measures_faster_is_chosen(machine):
    measured = machine(ZEN4, fp32=1.0, bf16=0.4)
    chosen = P.resolve_precision("auto")
    assert chosen == P.Precision("bf16", "auto: native bf16, measured faster than fp32")
    assert measured == ["fp32", "bf16"]
    assert str(P.processor()) == ("AMD EPYC 9654, %d cores, avx2 fma3 f16c avx512_f avx512_bf16 (%s, native bf16)"
                                  % (P.processor().cores, P.processor().isa))


def test_native_bf16_that_does_not_measure_faster_stays_fp32(machine):
    machine(SAPPHIRE, fp32=1.0, bf16=0.9)  # faster, but by less than FASTER
    assert P.resolve_precision("auto") == P.Precision("fp32", "auto: native bf16, but not measured faster than fp32")


@pytest.mark.parametrize("capabilities", [ZEN3, SKYLAKE], ids=["avx2-only", "avx512-without-bf16"])
def test_no_native_bf16_gives_int8_where_it_measures_faster(machine, capabilities):
    measured = machine(capabilities, int8=0.5)
    assert P.resolve_precision("auto") == P.Precision(
        "int8", "auto: no native bf16 on this CPU; int8 convolutions measured faster than fp32")
    assert measured == ["fp32", "int8"] and P.processor().native_bf16 is False


@pytest.mark.parametrize("int8, reason", [
    (0.9, "auto: no native bf16 on this CPU; int8 convolutions not measured faster than fp32"),
    (None, "auto: no native bf16 on this CPU, no int8 kernels")], ids=["int8-not-faster", "no-int8-kernels"])
def test_no_native_bf16_and_no_faster_int8_gives_fp32(machine, int8, reason):
    measured = machine(ZEN3, int8=int8)
    assert P.resolve_precision("auto") == P.Precision("fp32", reason)
    assert measured == ([] if int8 is None else ["fp32", "int8"])  # bf16 is never measured where it is emulated


def test_int8_kernels_that_fail_leave_fp32(machine, monkeypatch):
    measured = machine(ZEN3, int8=0.5)

    def failing(kind):
        if kind == "int8":
            raise RuntimeError("Didn't find engine for operation quantized::conv1d_prepack")
        return measured.append(kind) or 1.0

    monkeypatch.setattr(P, "_time_workload", failing)
    assert P.resolve_precision("auto") == P.Precision("fp32", "auto: no native bf16 on this CPU, the int8 kernels "
                                                               "failed")


def test_onednn_limited_below_bf16_counts_as_no_native(machine):
    machine(ZEN4, onednn=False)  # e.g. ONEDNN_MAX_CPU_ISA=AVX2 on a Zen 4
    assert P.resolve_precision("auto").name == "fp32"
    machine(ZEN4, onednn=False, int8=0.4)
    assert P.resolve_precision("auto").name == "int8"


@pytest.mark.parametrize("capabilities, onednn", [({}, True), (ZEN4, None)], ids=["no-cpuinfo", "no-onednn"])
def test_failed_detection_falls_back_to_fp32_or_a_faster_int8(machine, capabilities, onednn):
    measured = machine(capabilities, onednn=onednn)
    chosen = P.resolve_precision("auto")
    assert chosen.name == "fp32" and "could not tell" in chosen.reason and measured == []
    assert P.processor().native_bf16 is None and "bf16 unknown" in str(P.processor())
    machine(capabilities, onednn=onednn, int8=0.5)  # bf16 untold, int8 measured: no emulated bf16 risked
    assert P.resolve_precision("auto").name == "int8"


def test_arm_with_bf16_goes_by_onednn(machine, monkeypatch):
    machine({"cpu_name": "Neoverse-V1"}, onednn=True, fp32=1.0, bf16=0.5)
    monkeypatch.setattr(P.platform, "machine", lambda: "aarch64")
    assert P.resolve_precision("auto").name == "bf16"


@pytest.mark.parametrize("bf16_supported, expected", [(True, "bf16"), (False, "fp16")])
def test_cuda_auto_is_bf16_where_the_gpu_has_it_else_fp16(machine, monkeypatch, bf16_supported, expected):
    measured = machine(ZEN3)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_supported)
    assert P.resolve_precision("auto", "cuda").name == expected
    assert P.resolve_precision("auto", "cpu").name == "fp32" and measured == []
    assert P.describe_precision("auto", "cuda") == (f"protein tower on cuda: {P.resolve_precision('auto', 'cuda')}; "
                                                     "re-ranker: fp32 (auto: no native bf16 on this CPU, no int8 "
                                                     "kernels)")


@pytest.mark.parametrize("requested, device, expected", [
    ("fp32", "cpu", "fp32"), ("bf16", "cpu", "bf16"), ("fp16", "cpu", "bf16"), ("fp16", "cuda", "fp16"),
    ("bf16", "cuda", "bf16"), ("int8", "cpu", "int8"), ("int8", "cuda", "fp32")])
def test_an_explicit_precision_wins(machine, requested, device, expected):
    measured = machine(ZEN3, int8=2.0)  # no native bf16: bf16 asked for is still bf16; int8 even when slower
    assert P.resolve_precision(requested, device).name == expected and measured == []


def test_int8_asked_for_without_int8_kernels_is_fp32(machine):
    machine(ZEN4)
    assert P.resolve_precision("int8") == P.Precision("fp32", "int8 asked for: no int8 kernels on this cpu")


def test_the_measurement_is_kept_per_processor_and_torch_version(machine, tmp_path):
    measured = machine(ZEN4, fp32=1.0, bf16=0.4)
    assert P.resolve_precision("auto").name == "bf16"
    saved = list((tmp_path / "precision").iterdir())
    assert len(saved) == 1 and json.loads(saved[0].read_text())["bf16_seconds"] == 0.4
    machine(ZEN4, fp32=1.0, bf16=5.0)  # a new process on the same machine reads the measurement
    assert P.resolve_precision("auto").name == "bf16" and measured == ["fp32", "bf16"]
    machine(SAPPHIRE, fp32=1.0, bf16=5.0)  # another processor measures again
    assert P.resolve_precision("auto").name == "fp32" and len(measured) == 4
    assert len(list((tmp_path / "precision").iterdir())) == 2


def test_an_int8_measurement_joins_the_kept_one(machine, tmp_path):
    measured = machine(ZEN3, fp32=1.0, int8=0.5)
    assert P.resolve_precision("auto").name == "int8"
    (saved,) = (tmp_path / "precision").iterdir()
    assert {k: v for k, v in json.loads(saved.read_text()).items() if k.endswith("_seconds")} == {
        "fp32_seconds": 1.0, "int8_seconds": 0.5}
    machine(ZEN3, fp32=1.0, int8=5.0)
    assert P.resolve_precision("auto").name == "int8" and measured == ["fp32", "int8"]


def test_a_corrupt_or_unwritable_measurement_is_measured_again(machine, tmp_path):
    measured = machine(ZEN4, fp32=1.0, bf16=0.4)
    (tmp_path / "precision").write_text("not a folder")  # nothing can be kept
    assert P.resolve_precision("auto").name == "bf16" and len(measured) == 2


def test_the_real_workload_runs_in_every_precision():
    kinds = ("fp32", "bf16", "int8") if int8_supported() else ("fp32", "bf16")
    assert all(0 < P._time_workload(kind, repeats=1) for kind in kinds)


def test_a_bad_precision_is_one_line(machine):
    with pytest.raises(InputError, match="--precision must be one of auto, fp32, bf16, fp16, int8"):
        AnnotateConfig(precision="fp8").check()
    with pytest.raises(InputError, match="--precision"):
        P.resolve_precision("int4")


def test_auto_is_every_default():
    import inspect

    from retrieval.indexing import build_function_index
    from retrieval.models.protein_encoder import ProteinEncoder
    from retrieval.protein_index import ProteinIndex
    from retrieval.models.text_encoder import TextEncoder
    from train.config import TrainConfig

    assert AnnotateConfig().precision == "auto" == TrainConfig().precision
    for func in (ProteinEncoder.encode, TextEncoder.encode, TextEncoder.backbone_features, build_function_index,
                 ProteinIndex.build, ProteinIndex.search):
        assert inspect.signature(func).parameters["precision"].default == "auto", func


def test_the_embedding_cache_is_keyed_by_the_precision_computed(machine, tiny_model):
    machine(ZEN3)
    tower = tiny_model.protein_encoder
    assert tower.cache_key("auto") == tower.cache_key("fp32") != tower.cache_key("bf16")
    machine(ZEN3, int8=0.5)
    keys = {tower.cache_key(p) for p in ("auto", "fp32", "bf16")}
    assert len(keys) == 3 and tower.cache_key("auto") == tower.cache_key("int8")


def test_verbose_output_and_provenance_say_which_precision(machine, saved_pipeline, tmp_path, write, caplog):
    import logging

    from click.testing import CliRunner

    from retrieval.cli import main

    machine(ZEN3, int8=0.5 if int8_supported() else None)
    caplog.set_level(logging.INFO, logger="retrieval.models.precision")  # what -v shows
    model, index = saved_pipeline
    fasta = write("p.fasta", ">p1\nMKTAYIAKQRQISFVKSHFSRQ\n")
    out = tmp_path / "out.tsv"
    result = CliRunner().invoke(main, ["-v", "annotate", str(fasta), "--model", str(model), "--index", str(index),
                                       "--no-reference", "-o", str(out)])
    assert result.exit_code == 0, result.output
    line = "int8 (auto: no native bf16 on this CPU; int8 convolutions measured faster than fp32)" if int8_supported() \
        else "fp32 (auto: no native bf16 on this CPU, no int8 kernels)"
    assert f"precision on cpu: {line}" in caplog.text
    assert f"# precision: {line}\n" in out.read_text()
