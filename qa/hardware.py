"""What this machine can do, decided once: native bf16, and how many threads to use.

The bf16 decision reads the CPU's flags (``avx512_bf16`` or ``amx_bf16`` in
``/proc/cpuinfo``). torch's own ``get_cpu_capability()`` says "AVX512" on any AVX-512 CPU,
including those without bf16 instructions, where bf16 is emulated and slower than float32;
the flags are the only reliable signal. The embedder and the reader both ask here.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
CPUINFO = Path("/proc/cpuinfo")

__all__ = [
    "BF16_FLAGS",
    "Hardware",
    "bf16_supported",
    "cpu_flags",
    "passage_runtime",
    "probe",
    "reader_onnx_precision",
    "use_bf16",
]


@dataclass(frozen=True)
class Hardware:
    """The CPU as newsqa sees it.

    Attributes:
        model: The CPU's model name ("" when unknown).
        flags: Its feature flags, as ``/proc/cpuinfo`` lists them.
        cores: CPU cores this process may run on.
    """

    model: str
    flags: frozenset[str]
    cores: int

    @property
    def bf16(self) -> bool:
        """Whether the CPU has native bfloat16 matrix instructions."""
        return bool(self.flags & BF16_FLAGS)

    @property
    def threads(self) -> int:
        """Threads for torch and FAISS: one per core this process may use."""
        return max(1, self.cores)


def cpu_flags(cpuinfo: str) -> tuple[str, frozenset[str]]:
    """The model name and flags in the text of ``/proc/cpuinfo`` (first processor)."""
    model, flags = "", frozenset[str]()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
    return model, flags


@functools.cache
def probe() -> Hardware:
    """This machine's :class:`Hardware`, read once per process."""
    try:
        text = CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:  # not Linux, or /proc not mounted: assume nothing
        text = ""
    model, flags = cpu_flags(text)
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return Hardware(model=model, flags=flags, cores=cores)


@functools.cache
def bf16_supported() -> bool:
    """Whether bf16 runs natively here: the CPU's flags say so and torch computes it right."""
    if not probe().bf16:
        return False
    try:
        import torch

        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = torch.ones(4, 4) @ torch.ones(4, 4)
        return out.dtype == torch.bfloat16 and float(out[0, 0]) == 4.0
    except (ImportError, RuntimeError):
        return False


def reader_onnx_precision() -> str:
    """Which ONNX Runtime copy of the reader runs by default here: ``int8`` or ``fp32``.

    Both copies skip torch's import (seconds, docs/benchmarks.md "One-shot questions"). Without
    bf16 the int8 copy reads faster than torch in float32 at the same F1 (the default there since
    it was built). With bf16, torch in bf16 was the default, and the float32 copy gives its
    answers and confidences (within 0.02) where the int8 copy moves confidences by up to 0.2.
    Decided from the CPU flags, without importing torch.
    """
    return "fp32" if probe().bf16 else "int8"


def passage_runtime(dtype: str, onnx_int8_built: bool) -> str:
    """Which runtime embeds the passages of a new index, for ``NEWSQA_EMBED_DTYPE``.

    ``auto``: torch in bf16 where the CPU has it natively, else the int8 ONNX Runtime copy
    when built (faster than torch in float32 at the same recall, docs/benchmarks.md
    "Embedding runtimes"), else torch in float32. ``bf16``, ``fp32`` and ``int8`` force one.

    Returns:
        ``torch-bf16``, ``torch-fp32`` or ``onnx-int8``.
    """
    if dtype == "int8" or (dtype == "auto" and not probe().bf16 and onnx_int8_built):
        return "onnx-int8"
    return "torch-bf16" if use_bf16(dtype) else "torch-fp32"


def use_bf16(dtype: str) -> bool:
    """Whether to run in bfloat16 for a precision setting: ``auto``, ``bf16`` or ``fp32``.

    ``auto`` is bf16 only where it runs natively (:func:`bf16_supported`); ``bf16`` forces it
    (emulated, and slower, on a CPU without it); ``fp32`` never.
    """
    if dtype == "auto":
        return bf16_supported()
    return dtype == "bf16"
