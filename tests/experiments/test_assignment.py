"""Bucketing: deterministic, shares respected, the same in every process, stopped arms drained."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from experiments.assignment import SNAPSHOT_KEY, bucket, member_arm, snapshot_current
from experiments.services import experiment_start

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOT = {"id": 7, "salt": "5eed5a17", "arms": [{"id": 1, "name": "control", "p": 0.5, "overrides": {}},
                                                  {"id": 2, "name": "b", "p": 0.3, "overrides": {"epsilon": 0.1}},
                                                  {"id": 3, "name": "c", "p": 0.2, "overrides": {}}]}
CHILD = """
import json, sys
from experiments.assignment import member_arm  # a published snapshot in hand: no database, no cache
snapshot = json.loads(sys.stdin.read())
print(json.dumps([member_arm(user_id=u, published=snapshot).arm_id for u in range(1, 3001)]))
"""


def test_a_member_always_gets_the_same_arm_and_shares_are_respected() -> None:
    arms = [bucket(snapshot=SNAPSHOT, user_id=u)["id"] for u in range(1, 20_001)]
    assert arms == [bucket(snapshot=SNAPSHOT, user_id=u)["id"] for u in range(1, 20_001)]
    counts = Counter(arms)
    # binomial sd at n=20,000 is at most 0.0035; 0.015 is over 4 sd
    for arm in SNAPSHOT["arms"]:
        assert abs(counts[arm["id"]] / 20_000 - arm["p"]) < 0.015, counts


def test_another_salt_reshuffles_members_independently() -> None:
    other = {**SNAPSHOT, "salt": "another"}
    same = sum(bucket(snapshot=SNAPSHOT, user_id=u)["id"] == bucket(snapshot=other, user_id=u)["id"]
               for u in range(1, 5001))
    # independent draws agree with probability 0.5^2 + 0.3^2 + 0.2^2 = 0.38
    assert 0.33 < same / 5000 < 0.43


def test_two_worker_processes_bucket_every_member_alike() -> None:
    """Two fresh interpreters (different hash seeds, as two workers or a restart) agree with each other and us."""
    workers = [subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True, cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": seed,
                                                          "DJANGO_SETTINGS_MODULE": "apex_site.settings"})
               for seed in ("1", "2")]  # started together: two live workers
    answers = []
    for worker in workers:
        out, _ = worker.communicate(json.dumps(SNAPSHOT), timeout=120)
        assert worker.returncode == 0
        answers.append(json.loads(out.strip().splitlines()[-1]))
    here = [member_arm(user_id=u, published=SNAPSHOT).arm_id for u in range(1, 3001)]
    assert answers[0] == answers[1] == here
    assert set(here) == {1, 2, 3}


def test_the_running_experiment_is_published_and_a_stopped_arm_gets_no_members(
        make_experiment, django_capture_on_commit_callbacks) -> None:  # noqa: ANN001
    from django.core.cache import cache
    from django.utils import timezone

    from experiments.assignment import snapshot_publish

    assert member_arm(user_id=1) is None  # nothing runs
    experiment = make_experiment(arms=[("control", 0.5, "exploration", {}, True),
                                       ("greedy", 0.25, "exploration", {"temperature": 0.0}, False),
                                       ("lite", 0.25, "tier", {"tier": "lite"}, False)])
    cache.set(SNAPSHOT_KEY, {}, 60)  # what every process held before the start
    with django_capture_on_commit_callbacks(execute=True):
        experiment_start(experiment=experiment)  # publishes the new snapshot after commit
    seen = Counter(member_arm(user_id=u).arm_name for u in range(1, 2001))
    assert set(seen) == {"control", "greedy", "lite"}
    lite = experiment.arms.get(name="lite")
    assert member_arm(user_id=next(u for u in range(1, 2001) if member_arm(user_id=u).arm_name == "lite")
                      ).overrides == {"lite": True}
    lite.stopped_at = timezone.now()
    lite.save()
    snapshot = snapshot_publish()
    assert {a["name"]: a["p"] for a in snapshot["arms"]} == {"control": pytest.approx(2 / 3),
                                                             "greedy": pytest.approx(1 / 3), "lite": 0.0}
    assert "lite" not in {member_arm(user_id=u).arm_name for u in range(1, 2001)}
    assert snapshot_current() == snapshot


def test_thompson_experiments_bucket_by_the_stored_allocation(make_experiment) -> None:  # noqa: ANN001
    from experiments.assignment import snapshot_publish

    experiment = make_experiment(allocation="thompson", floor_share=0.05)
    experiment_start(experiment=experiment)
    control, explore = experiment.arms.order_by("id")
    type(experiment).objects.filter(pk=experiment.pk).update(
        allocation_probabilities={str(control.pk): 0.9, str(explore.pk): 0.1})
    snapshot_publish()
    counts = Counter(member_arm(user_id=u).arm_name for u in range(1, 10_001))
    assert abs(counts["control"] / 10_000 - 0.9) < 0.015


@pytest.mark.services
@pytest.mark.django_db
def test_an_event_carries_the_new_arm_at_once_after_an_experiment_starts(make_experiment, alice,
                                                                          django_capture_on_commit_callbacks) -> None:  # noqa: ANN001
    """Events read the running experiment from this process's memory (no round trip each); a start drops it."""
    from experiments.assignment import SNAPSHOT_KEY, SNAPSHOT_MEMORY, member_arm_id
    from experiments.services import experiment_start
    from tests.apex_site.test_broadcast import _eventually, _listening

    _listening(SNAPSHOT_MEMORY)
    # nothing runs; the first call publishes that (its own broadcast drops the memory), a later one remembers it
    assert _eventually(lambda: member_arm_id(alice.pk) is None and SNAPSHOT_MEMORY.get(SNAPSHOT_KEY) == {})
    experiment = make_experiment()
    with django_capture_on_commit_callbacks(execute=True):
        experiment_start(experiment=experiment)
    assert member_arm_id(alice.pk) in set(experiment.arms.values_list("id", flat=True))
