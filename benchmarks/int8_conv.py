"""Issue 26's lead "int8 for the tower", bounded from above: one convolution of the compact tower's
shapes in fp32 against int8 (fbgemm, per-channel weights), on random data, in one process.

    python benchmarks/int8_conv.py [--batch 64] [--length 176] [--repeats 30]

Only the arithmetic is timed: no model is quantised and no accuracy is measured (the tower itself:
``benchmarks/int8_tower.py``). ``ATEN_CPU_CAPABILITY`` / ``ONEDNN_MAX_CPU_ISA`` limit the fp32 side
only; ``FBGEMM_ENABLE_INSTRUCTIONS=AVX2`` keeps the int8 side from AVX-512 VNNI, as on an AVX2-only
CPU.
"""
from __future__ import annotations

import time
import warnings

import click
import torch
from torch.ao.nn.quantized import Conv1d as QuantizedConv1d

from machine import machine_line

CHANNELS = 256  # the shipped tower's channels


def _ms(step, repeats: int) -> float:
    step()
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - started) / repeats * 1000


@click.command()
@click.option("--batch", default=64, show_default=True, help="Proteins per batch.")
@click.option("--length", default=176, show_default=True, help="Positions after the stride-3 stem (~512 residues).")
@click.option("--repeats", default=30, show_default=True)
def main(batch, length, repeats):
    warnings.filterwarnings("ignore", message=".*deprecated.*")
    torch.backends.quantized.engine = "fbgemm"
    torch.manual_seed(0)
    x = torch.randn(batch, CHANNELS, length)
    print("| convolution | fp32 ms | int8 ms | int8 ms, with quantising the input and back |\n|---|---|---|---|")
    for kernel, dilation in ((5, 1), (5, 2), (1, 1)):
        padding = kernel // 2 * dilation
        conv = torch.nn.Conv1d(CHANNELS, CHANNELS, kernel, padding=padding, dilation=dilation).eval()
        int8 = QuantizedConv1d(CHANNELS, CHANNELS, kernel, padding=padding, dilation=dilation)
        scales = conv.weight.detach().abs().amax(dim=(1, 2)) / 127
        int8.set_weight_bias(torch.quantize_per_channel(conv.weight.detach(), scales, torch.zeros(CHANNELS, dtype=torch.long),
                                                        0, torch.qint8), conv.bias.detach())
        int8.scale, int8.zero_point = 0.05, 64
        quantised = torch.quantize_per_tensor(x, 0.05, 64, torch.quint8)
        with torch.inference_mode():
            fp32 = _ms(lambda: conv(x), repeats)
            alone = _ms(lambda: int8(quantised), repeats)
            round_trip = _ms(lambda: int8(torch.quantize_per_tensor(x, 0.05, 64, torch.quint8)).dequantize(), repeats)
        print(f"| kernel {kernel}, dilation {dilation} | {fp32:.2f} | {alone:.2f} | {round_trip:.2f} |")
    print(f"torch's own kernels: {torch.backends.cpu.get_cpu_capability()} (fbgemm: FBGEMM_ENABLE_INSTRUCTIONS)")
    print(machine_line("fp32"))


if __name__ == "__main__":
    main()
