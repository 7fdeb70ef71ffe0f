"""Full vs sampled softmax for SASRec's next-item loss as the catalogue grows: writes a section of docs/SCALE.md.

    python benchmarks/softmax_scale.py [--items 1682,9742,30000,59047] [--steps 5]

One training step (forward, loss, backward, AdamW) of SASRec's default network on a batch of 128 windows of
its default length, one torch thread, with the loss over the whole catalogue and with the sampled softmax that
`SASRecConfig.full_softmax_items` switches to (2,048 uniform negatives shared by the batch). The median step
after one warm-up is reported as training positions per second; an epoch at 25M ratings is about 25M positions.
The Neural-ODE uses the same loss (`ml_core.models.layers.next_item_loss`).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.support.sections import marked, write_section  # noqa: E402

DOC = REPO / "docs" / "SCALE.md"
BATCH = 128


def positions_per_second(n_items: int, sampled: bool, steps: int) -> float:
    import torch

    from ml_core.models.layers import next_item_loss
    from ml_core.models.sasrec import SASRecConfig, SASRecNet

    torch.manual_seed(0)
    config = SASRecConfig()
    net = SASRecNet(n_items, config)
    opt = torch.optim.AdamW(net.parameters(), lr=config.learning_rate)
    rng = np.random.default_rng(0)
    ids = torch.randint(1, n_items + 1, (BATCH, config.max_len + 1))
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        hidden = net(ids[:, :-1])
        loss = next_item_loss(hidden.reshape(-1, hidden.shape[-1]), net.item_weights(), ids[:, 1:].reshape(-1) - 1,
                              full_items=0 if sampled else n_items, negatives=config.negatives, rng=rng)
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return BATCH * config.max_len / float(np.median(times[1:]))


def main() -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", default="1682,9742,30000,59047")
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    rows = []
    for n in (int(x) for x in args.items.split(",")):
        full, sampled = positions_per_second(n, False, args.steps), positions_per_second(n, True, args.steps)
        rows.append(f"| {n:,} | {full:,.0f} | {sampled:,.0f} | {sampled / full:.1f}x | "
                     f"{25e6 / full / 60:,.0f} | {25e6 / sampled / 60:,.0f} |")
        print(rows[-1], flush=True)
    start, end = marked("softmax")
    section = "\n".join([
        start,
        "## Next-item softmax at catalogue size (SASRec, Neural-ODE)",
        "",
        f"Produced by `python benchmarks/softmax_scale.py --items {args.items} --steps {args.steps}` on "
        f"{platform.node()} ({os.cpu_count()} CPUs), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; one torch thread; "
        f"1-minute load {load_before:.2f} before (a shared machine: rates are lower bounds).",
        "",
        "One training step of SASRec's default network (128 windows of 20 positions), with the loss over every item "
        "and with the sampled softmax used past `full_softmax_items` (20,000): the positive against 2,048 uniform "
        "items shared by the batch. *min / epoch at 25M*: 25M training positions at that rate.",
        "",
        "| items | full softmax positions/s | sampled positions/s | speed-up | min / epoch at 25M, full | "
        "min / epoch at 25M, sampled |",
        "|---:|---:|---:|---:|---:|---:|",
        *rows,
        end,
    ])
    write_section(DOC, "softmax", section, title="Scale: how the models grow with the data")
    print(f"wrote {DOC.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
