"""Online learning, the real-time loop's one owner: stream consumer -> applier -> checkpoint -> push -> state sync.

``events`` records interactions (the outbox), relays them to the Redis stream and marks them applied; everything
about models happens here:

* ``consumer.py``: drains the stream in mini-batches (or, without Redis, applies outbox rows directly) and acks.
* ``apply.py``: applies a mini-batch exactly once (``events.services.event_apply_batch``) to this process's
  learner and stores its checkpoint in the same transaction; the deferred SGD step and held-out check after
  the push.
* ``learner.py``: this process's :class:`ml_core.serving.OnlineLearningCoordinator`, what it learns on (the
  serving engine's item space and its own copy of the ranker, or the catalogue's movie ids) and catching up
  with the newest checkpoint.
* ``checkpoints.py``: the :class:`~recommendations.models.OnlineCheckpoint` rows (save, follow, latest).
* ``sync.py``: the published state version; serving workers swap the newest checkpoint into their engine
  (called from the adapter's one per-request sync, ``recommendations/serving.py``).
* ``push.py``: each affected user's refreshed list, sent to their open pages through ``events.live``.
"""
