"""The line printed under every speed table: speed depends on the processor and the precision, and
the machines these benchmarks run on are not all alike (docs/benchmarks.md, speed on every CPU)."""
from __future__ import annotations


def machine_line(precision: str = "auto") -> str:
    """Processor (model, cores, the flags that bear on speed, the instruction set torch uses, native
    bf16 or not, any ISA limit set in the environment), the precision ``precision`` computes in,
    and torch's version and threads."""
    import torch

    from retrieval.models.precision import describe_precision, processor

    return (f"processor: {processor()}\nprecision: {describe_precision(precision)}; "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads")
