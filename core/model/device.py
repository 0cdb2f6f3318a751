"""Device and precision policy: CUDA when present else CPU, bf16 autocast where the hardware
does it natively, and torch CPU threads from the cores other processes leave idle.

Finetuning, pretraining and prediction run the same code on either device; only what is
decided here differs.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator

import torch

from core.errors import FewlabelError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """CUDA when present and asked for ("auto" or "cuda"), else CPU: one code path for both."""
    if isinstance(device, torch.device):
        return device
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise FewlabelError("device cuda was asked for, but no CUDA device is available")
    return torch.device(device)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _cpu_ticks() -> tuple[int, int, int] | None:
    """(machine busy, machine total, this process) CPU ticks from /proc; None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        with open("/proc/self/stat") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    total = sum(fields[:8])
    return total - idle, total, int(own[11]) + int(own[12])  # utime + stime


def busy_cores_elsewhere(window: float = 0.2) -> float | None:
    """Cores' worth of CPU that other processes used over a short window; None if unknown."""
    first = _cpu_ticks()
    if first is None:
        return None
    time.sleep(window)
    second = _cpu_ticks()
    if second is None or second[1] <= first[1]:
        return None
    others = (second[0] - first[0]) - (second[2] - first[2])
    return max(0.0, others / (second[1] - first[1]) * (os.cpu_count() or 1))


def choose_threads(requested: int | None = None) -> int:
    """Torch CPU threads: `requested`, else one per available core that nothing else is using.

    More threads than idle cores is ruinous, not mildly slower: while another process held
    one of two cores, a tiny-BERT finetune took 55 s with 2 threads and 0.2 s with 1, and
    the MiniLM benchmark 445 s instead of 33 s (OpenMP threads wait on a descheduled peer).
    """
    if requested:
        return max(1, int(requested))
    cores = available_cores()
    others = busy_cores_elsewhere()
    if others is None:
        return cores
    return max(1, min(cores, cores - int(others + 0.5)))


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with `n` torch CPU threads, then restore the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _cpu_has_native_bf16() -> bool:
    """Whether the CPU multiplies bf16 in hardware (AVX512-BF16 or AMX); Linux flags only."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for `precision` ("auto", "bf16", "fp32") on a device; None = fp32.

    "auto" picks bf16 only where the hardware does it natively (CUDA with bf16, a CPU with
    AVX512-BF16/AMX): there it makes CPU training steps about 2x faster; elsewhere emulated
    bf16 is slower than fp32. Weights stay fp32 either way (mixed precision).
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision != "auto":
        raise FewlabelError(f"unknown precision {precision!r}; choose auto, bf16 or fp32")
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu":
        return torch.bfloat16 if _cpu_has_native_bf16() else None
    return None


def autocast(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager:
    """torch.autocast for `precision` on `device`, or a no-op context for fp32."""
    dtype = autocast_dtype(device, precision)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def training_threads(device: torch.device, requested: int | None = None) -> int:
    """Torch CPU threads for a training run: `choose_threads` on CPU; on CUDA the current
    setting (the CPU only feeds the GPU)."""
    return choose_threads(requested) if device.type == "cpu" else torch.get_num_threads()
