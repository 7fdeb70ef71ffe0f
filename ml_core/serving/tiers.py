"""The three hardware tiers and how one is chosen at start-up (no torch import unless asked about CUDA)."""

from __future__ import annotations

import enum
import os
from pathlib import Path

GPU_MIN_RAM = 16 * 2**30
CPU_MIN_RAM = 8 * 2**30


class Tier(enum.IntEnum):
    """The three hardware tiers."""

    TORCH = 1
    ONNX = 2
    LITE = 3

    @property
    def label(self) -> str:
        return {1: "tier1-torch", 2: "tier2-onnx-int8", 3: "tier3-faiss-tfidf"}[int(self)]


def total_ram_bytes() -> int:
    """Physical memory of the machine (or the cgroup limit when lower)."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(path).read_text().strip()
        except OSError:
            continue
        if raw.isdigit():
            ram = min(ram, int(raw))
    return ram


def cuda_available() -> bool:
    """True when torch sees a CUDA device (torch is imported only to ask)."""
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def detect_tier(*, ram_bytes: int | None = None, cuda: bool | None = None) -> Tier:
    """CUDA and >= 16 GB -> Tier 1; >= 8 GB -> Tier 2; otherwise Tier 3."""
    ram = total_ram_bytes() if ram_bytes is None else ram_bytes
    if ram >= GPU_MIN_RAM and (cuda_available() if cuda is None else cuda):
        return Tier.TORCH
    return Tier.ONNX if ram >= CPU_MIN_RAM else Tier.LITE


def parse_tier(value: str | int | Tier | None) -> Tier | None:
    """'1'/'2'/'3', 'torch'/'onnx'/'lite', a Tier, or ''/None (= detect); ValueError names bad values."""
    if value is None or value == "":
        return None
    if isinstance(value, Tier):
        return value
    text = str(value).strip().lower().removeprefix("tier")
    names = {"1": Tier.TORCH, "torch": Tier.TORCH, "2": Tier.ONNX, "onnx": Tier.ONNX, "3": Tier.LITE,
             "lite": Tier.LITE}
    if text not in names:
        raise ValueError(f"serving tier {value!r} not understood: use 1, 2, 3 (or torch, onnx, lite)")
    return names[text]


def serving_device(tier: int) -> str:
    """'cuda' for Tier 1 when torch sees a CUDA device, else 'cpu' (Tier 2 and 3 never use a GPU)."""
    if tier != 1:
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def limit_threads() -> None:
    """One BLAS/OpenMP thread per serving process: requests are small, and on 2 shared cores threads only
    contend (a 100 x 64 matmul went from 0.05 ms to 30 ms under load with the default thread pool)."""
    import sys

    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)
    torch = sys.modules.get("torch")  # torch keeps its own pool: threadpoolctl leaves it at the core count
    if torch is not None:
        torch.set_num_threads(1)
