"""Which arithmetic the towers and the re-ranker compute in, and the processor that decides it.

``--precision auto`` (the default) computes in bfloat16 only where the device does it natively and
it measures faster: on a CPU that torch reports with AVX-512 BF16 or AMX-BF16 (and oneDNN is allowed
to use them), confirmed by a micro-benchmark run once and kept in the cache per processor and torch
version; on CUDA, bf16 where the GPU has it, else fp16. A CPU without native bfloat16 (AVX2-only AMD
and older Intel, most laptops) emulates it, and there the protein tower ran 30 times slower than in
fp32 (docs/benchmarks.md, speed on every CPU): there ``auto`` gives ``int8`` (the compact protein
tower's convolutions in int8, :mod:`retrieval.models.int8_cnn`, everything else fp32) where torch has
the int8 kernels and the micro-benchmark runs them faster, else fp32. An explicit precision wins.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import platform
import time
from dataclasses import dataclass

import torch

from retrieval.config import check_precision
from retrieval.models.int8_cnn import Int8Conv1d, int8_supported

LOG = logging.getLogger(__name__)
#: bf16 is chosen only when the micro-benchmark runs it at most this fraction of fp32's time.
FASTER = 0.8
#: The processor's capabilities that bear on speed, as torch names them.
FLAGS = ("avx2", "fma3", "f16c", "avx512_f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_fp16", "avx_vnni")
#: Environment variables that limit the instruction sets torch uses (they change what is native):
#: its own kernels, oneDNN's (convolutions), fbgemm's (int8) and MKL's (matrix products).
ISA_LIMITS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "FBGEMM_ENABLE_INSTRUCTIONS", "MKL_ENABLE_INSTRUCTIONS")


@dataclass(frozen=True)
class Precision:
    """A resolved precision: what is computed (fp32 | bf16 | fp16 | int8) and why."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


@dataclass(frozen=True)
class Processor:
    """What the speed of this machine depends on; every speed figure is printed beside it."""

    model: str
    cores: int  # logical cores
    flags: tuple[str, ...]  # the FLAGS the processor has
    isa: str  # the instruction set torch's kernels use (AVX512, AVX2, ...)
    native_bf16: bool | None  # None: could not be told
    limits: tuple[str, ...] = ()  # ISA_LIMITS set in the environment, as NAME=value

    def __str__(self) -> str:
        native = {True: "native bf16", False: "no native bf16", None: "bf16 unknown"}[self.native_bf16]
        limits = f"; limited by {' '.join(self.limits)}" if self.limits else ""
        return f"{self.model}, {self.cores} cores, {' '.join(self.flags) or 'no flags read'} ({self.isa}, {native}{limits})"


def resolve_precision(requested: str = "auto", device: torch.device | str = "cpu") -> Precision:
    """The precision ``requested`` computes in on ``device`` (``auto``: see the module docstring).

    fp16 asked for on a CPU computes in bf16 (torch's CPU autocast has no fp16 fast path).
    """
    device = torch.device(device)
    check_precision(requested)
    if requested != "auto":
        if requested == "fp16" and device.type != "cuda":
            return Precision("bf16", "fp16 asked for: bf16 on CPU")
        if requested == "int8" and not (device.type == "cpu" and int8_supported()):
            return Precision("fp32", f"int8 asked for: no int8 kernels on this {device.type}")
        return Precision(requested, "asked for")
    return _auto(device.type)


def describe_precision(requested: str, tower: torch.device | str = "cpu") -> str:
    """What ``requested`` computes in, for the protein tower on ``tower`` and the re-ranker (on CPU)."""
    cpu = resolve_precision(requested, "cpu")
    if torch.device(tower).type == "cpu":
        return str(cpu)
    return f"protein tower on {torch.device(tower).type}: {resolve_precision(requested, tower)}; re-ranker: {cpu}"


@functools.lru_cache(maxsize=None)
def _auto(device_type: str) -> Precision:
    if device_type == "cuda":
        chosen = Precision("bf16", "auto: the GPU computes bf16") if torch.cuda.is_bf16_supported() \
            else Precision("fp16", "auto: the GPU has no bf16")
    elif device_type != "cpu":
        chosen = Precision("fp32", f"auto: {device_type} device")
    else:
        chosen = _auto_cpu()
    LOG.info("precision on %s: %s", device_type, chosen)
    return chosen


def _auto_cpu() -> Precision:
    cpu = processor()
    if cpu.native_bf16:
        return _faster(cpu, "bf16", "auto: native bf16, measured faster than fp32",
                       "auto: native bf16, but not measured faster than fp32")
    why = "could not tell whether this CPU computes bf16 natively" if cpu.native_bf16 is None \
        else "no native bf16 on this CPU"
    if not int8_supported():
        return Precision("fp32", f"auto: {why}, no int8 kernels")
    try:
        return _faster(cpu, "int8", f"auto: {why}; int8 convolutions measured faster than fp32",
                       f"auto: {why}; int8 convolutions not measured faster than fp32")
    except RuntimeError as err:  # kernels listed but failing (a torch whose quantised tensors are going away)
        LOG.debug("the int8 micro-benchmark failed: %s", err)
        return Precision("fp32", f"auto: {why}, the int8 kernels failed")


def _faster(cpu: Processor, kind: str, yes: str, no: str) -> Precision:
    """``kind`` (bf16 | int8) with the reason ``yes`` where the micro-benchmark runs it faster than
    fp32, else fp32 with the reason ``no``."""
    seconds = measured_seconds(cpu, kind)
    LOG.info("%s micro-benchmark on %s: fp32 %.1f ms, %s %.1f ms", kind, cpu.model, 1e3 * seconds["fp32"], kind,
             1e3 * seconds[kind])
    return Precision(kind, yes) if seconds[kind] <= FASTER * seconds["fp32"] else Precision("fp32", no)


@functools.lru_cache(maxsize=None)
def processor() -> Processor:
    """This machine's processor as torch sees it (the model name from ``lscpu``'s source)."""
    capabilities = _capabilities()
    limits = tuple(f"{k}={os.environ[k]}" for k in ISA_LIMITS if os.environ.get(k))
    return Processor(model=_model_name(capabilities), cores=os.cpu_count() or 1,
                     flags=tuple(f for f in FLAGS if capabilities.get(f)), isa=torch.backends.cpu.get_cpu_capability(),
                     native_bf16=_native_bf16(capabilities), limits=limits)


def _capabilities() -> dict:
    """The CPU's features as torch's cpuinfo reads them ({}: unreadable)."""
    try:
        return dict(torch.cpu.get_capabilities())
    except Exception as err:  # noqa: BLE001 - an old torch, or a platform cpuinfo cannot read
        LOG.debug("cannot read the CPU's capabilities: %s", err)
        return {}


def _onednn_bf16() -> bool | None:
    """Whether oneDNN (torch's conv and matmul kernels) may compute bf16 here (None: cannot ask)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())  # False under ONEDNN_MAX_CPU_ISA=AVX2
    except Exception as err:  # noqa: BLE001 - a torch built without oneDNN
        LOG.debug("cannot ask oneDNN about bf16: %s", err)
        return None


def _native_bf16(capabilities: dict) -> bool | None:
    """True when the CPU has bf16 instructions and oneDNN may use them; None when that cannot be told."""
    allowed = _onednn_bf16()
    if allowed is None:
        return None
    if platform.machine().lower() in ("x86_64", "amd64", "i686", "x86"):
        if not capabilities:
            return None
        # oneDNN also says yes on AVX-512 without BF16 instructions, where it emulates them
        return allowed and bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))
    return allowed  # Arm: oneDNN says yes only with the BF16 extension


def _model_name(capabilities: dict) -> str:
    """The model name ``lscpu`` shows, with the x86 family and model numbers (a virtual machine
    often names only the vendor: "AMD EPYC" family 25 model 17 is a Zen 4)."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if not key.strip():
                    break  # the first processor is enough
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or str(capabilities.get("cpu_name") or platform.processor() or platform.machine())
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def measured_seconds(cpu: Processor, kind: str) -> dict[str, float]:
    """Seconds of a small convolution and matrix product like the towers' and the re-ranker's, in
    fp32 and in ``kind`` (bf16 | int8), by name: measured once per processor, torch version and ISA
    limit, then read from the cache."""
    from retrieval.feature_cache import cache_dir, read_json, write_json

    key = hashlib.sha256(json.dumps([str(cpu), torch.__version__]).encode()).hexdigest()[:16]
    path = cache_dir() / "precision" / f"{key}.json"
    saved = read_json(path)
    seconds = {k: saved[f"{k}_seconds"] for k in ("fp32", kind) if isinstance(saved.get(f"{k}_seconds"), (int, float))}
    if len(seconds) < 2:
        seconds = {k: _time_workload(k) for k in ("fp32", kind)}
        write_json(path, {**saved, "processor": str(cpu), "torch": torch.__version__,
                          **{f"{k}_seconds": v for k, v in seconds.items()}})
    return seconds


@torch.inference_mode()
def _time_workload(kind: str, repeats: int = 3) -> float:
    """Best of ``repeats`` of one pass of the workload in ``kind`` (fp32 | bf16 | int8; about 10 ms
    in fp32 on 2 cores). int8 quantises the convolution only, as the int8 tower does."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(8, 128, 256, generator=generator)
    conv = torch.nn.Conv1d(128, 128, 9, padding=4)
    if kind == "int8":
        out = conv(x)
        conv = Int8Conv1d(conv, out.min().item(), out.max().item())
    a, b = torch.randn(2048, 256, generator=generator), torch.randn(256, 128, generator=generator)
    best = float("inf")
    for _ in range(repeats + 1):  # the first pass creates oneDNN's kernels
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=kind == "bf16"):
            conv(x)
            a @ b
        best = min(best, time.perf_counter() - start)
    return best
