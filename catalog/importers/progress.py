"""Progress bars for importers: tqdm on stderr, off when asked."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm


@contextmanager
def progress_bar(total: int, description: str, enabled: bool) -> Iterator[tqdm]:
    """A tqdm bar on stderr (disabled bars still accept update calls)."""
    bar = tqdm(total=total, desc=description, unit="row", file=sys.stderr, disable=not enabled or total == 0,
               dynamic_ncols=True, mininterval=0.5)
    try:
        yield bar
    finally:
        bar.close()

