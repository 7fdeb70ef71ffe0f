"""Pin BLAS/OpenMP/torch threads per process before numeric libraries load.

On 2 cores, default OpenBLAS/torch threading multiplies tail latency; one thread per
web or worker process is the default (``APEX_THREADS`` changes it).
"""

from __future__ import annotations

import os

_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def pin_threads() -> int:
    """Set thread env vars (unless already set) and torch's pools if torch is loaded."""
    count = int(os.environ.get("APEX_THREADS", "1") or 1)
    for var in _VARS:
        os.environ.setdefault(var, str(count))
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(count)
    return count
