"""Output shapes of the recommendation APIs, for the OpenAPI schema (the engine returns plain dicts of this shape)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers

from events.models import Event


def _nullable_float(**kwargs: Any) -> serializers.FloatField:
    return serializers.FloatField(allow_null=True, **kwargs)


class ExplanationSerializer(serializers.Serializer):
    """Why an item is on the list (``explain=true``)."""

    sources = serializers.ListField(child=serializers.CharField(), help_text="retrieval sources that proposed it")
    contributions = serializers.DictField(child=serializers.FloatField(), help_text="model -> share of the score")
    boosts = serializers.ListField(child=serializers.CharField(), help_text="re-ranking boosts applied")
    anchor_movie_id = serializers.IntegerField(required=False, allow_null=True,
                                             help_text="the movie it is most like (null: no movie the member liked explains it)")
    shared = serializers.ListField(child=serializers.CharField(), required=False,
                                   help_text="relations shared with the anchor (franchise, director, genre, era)")
    sentence = serializers.CharField()
    facts = serializers.DictField(required=False, help_text="the grounded facts an LLM sentence is written from "
                                                            "(only when LLM explanations are configured)")
    llm_sentence = serializers.CharField(required=False, allow_null=True,
                                         help_text="the LLM's sentence from those facts; null: show `sentence` "
                                                   "(timeout, provider error, rejected answer...)")
    llm_status = serializers.ChoiceField(required=False, choices=["generated", "cached", "timeout", "provider_error",
                                                                  "malformed", "rejected", "missing", "cooldown"])


class RecommendedItemSerializer(serializers.Serializer):
    movie_id = serializers.IntegerField()
    score = serializers.FloatField()
    position = serializers.IntegerField(min_value=0)
    propensity = serializers.FloatField(help_text="probability the slate sampler put it here (for off-policy use)")
    title = serializers.CharField(allow_null=True)
    year = serializers.IntegerField(allow_null=True)
    genres = serializers.ListField(child=serializers.CharField())
    explanation = ExplanationSerializer(required=False)
    predicted_rating = _nullable_float(required=False, help_text="0.5-5 stars; members with ratings only")


class EnrichedItemSerializer(RecommendedItemSerializer):
    """An item with the catalog's metadata (absent when the catalog no longer has the movie)."""

    overview = serializers.CharField(required=False, allow_null=True)
    poster_path = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    runtime = serializers.IntegerField(required=False, allow_null=True)
    vote_average = _nullable_float(required=False)
    rating_mean = _nullable_float(required=False)
    rating_count = serializers.IntegerField(required=False, allow_null=True)
    collection = serializers.CharField(required=False, allow_null=True)


class PolicySerializer(serializers.Serializer):
    name = serializers.CharField()
    temperature = serializers.FloatField()


class FairnessSerializer(serializers.Serializer):
    """The per-list audit (``fairness=true``): KL divergences of genre and popularity mix."""

    kl_genre_catalogue = serializers.FloatField()
    kl_popularity_catalogue = serializers.FloatField()
    popularity_buckets = serializers.ListField(child=serializers.FloatField())
    kl_genre_profile = serializers.FloatField(required=False)
    kl_popularity_profile = serializers.FloatField(required=False)


class RecommendationListSerializer(serializers.Serializer):
    """A served list and how it was made."""

    items = RecommendedItemSerializer(many=True)
    tier = serializers.IntegerField()
    tier_name = serializers.CharField()
    weights_version = serializers.CharField(allow_blank=True)
    bundle_version = serializers.CharField(allow_blank=True)
    gated = serializers.BooleanField(help_text="the models disagreed; ranked by content similarity")
    cold_start = serializers.BooleanField()
    disagreement = _nullable_float()
    policy = PolicySerializer(required=False, help_text="empty for a cold-start list")
    fairness = FairnessSerializer(allow_null=True)


class ExperimentArmSerializer(serializers.Serializer):
    experiment_id = serializers.IntegerField()
    arm_id = serializers.IntegerField()
    arm = serializers.CharField(help_text="the arm's name")


class UserRecommendationsSerializer(RecommendationListSerializer):
    request_id = serializers.CharField(help_text="logged with the impressions")
    user_id = serializers.IntegerField()
    arm = ExperimentArmSerializer(allow_null=True, help_text="the running experiment's arm that chose this list "
                                                             "(logged with the impressions); null outside experiments")


class MovieRecommendationsSerializer(RecommendationListSerializer):
    movie_id = serializers.IntegerField()


class EnrichedRecommendationsSerializer(MovieRecommendationsSerializer):
    items = EnrichedItemSerializer(many=True)


class VisualNeighbourSerializer(serializers.Serializer):
    movie_id = serializers.IntegerField()
    score = serializers.FloatField(help_text="cosine similarity of the CLIP poster embeddings")
    title = serializers.CharField()
    year = serializers.IntegerField(allow_null=True)
    poster_url = serializers.CharField()


class VisualRecommendationsSerializer(serializers.Serializer):
    movie_id = serializers.IntegerField()
    model = serializers.CharField(help_text="the CLIP weights the index was built with")
    index_version = serializers.CharField()
    items = VisualNeighbourSerializer(many=True)


class VisualMovieSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    year = serializers.IntegerField(allow_null=True)
    genres = serializers.ListField(child=serializers.CharField())
    poster_url = serializers.CharField()


class VisualSearchHitSerializer(serializers.Serializer):
    score = serializers.FloatField(help_text="cosine similarity of the query's and the poster's CLIP embeddings")
    movie = VisualMovieSerializer()


class VisualSearchResultsSerializer(serializers.Serializer):
    query = serializers.CharField()
    mode = serializers.ChoiceField(choices=["visual"])
    results = VisualSearchHitSerializer(many=True)


class KnowledgeGraphEntitiesSerializer(serializers.Serializer):
    franchise = serializers.CharField(allow_null=True)
    director = serializers.CharField(allow_null=True)
    genres = serializers.ListField(child=serializers.CharField())
    era = serializers.IntegerField(allow_null=True, help_text="decade, e.g. 1990")


class KnowledgeGraphNeighbourSerializer(serializers.Serializer):
    movie_id = serializers.IntegerField()
    score = serializers.FloatField()
    shared = serializers.ListField(child=serializers.CharField())
    title = serializers.CharField(allow_null=True)


class KnowledgeGraphRelationsSerializer(serializers.Serializer):
    franchise = KnowledgeGraphNeighbourSerializer(many=True)
    director = KnowledgeGraphNeighbourSerializer(many=True)
    genre = KnowledgeGraphNeighbourSerializer(many=True)
    era = KnowledgeGraphNeighbourSerializer(many=True)


class KnowledgeGraphSerializer(serializers.Serializer):
    movie_id = serializers.IntegerField()
    entities = KnowledgeGraphEntitiesSerializer()
    relations = KnowledgeGraphRelationsSerializer()


class ArtifactsReloadedSerializer(serializers.Serializer):
    reloaded = serializers.BooleanField()
    bundle_version = serializers.CharField(allow_blank=True)
    tier = serializers.CharField(allow_null=True)
    weights_version = serializers.CharField(allow_blank=True)


class WeightsPublishedSerializer(serializers.Serializer):
    active_version = serializers.CharField()
    weights = serializers.DictField(child=serializers.FloatField(), help_text="model -> blend weight")
    published = serializers.BooleanField()


class ArtifactMismatchSerializer(serializers.Serializer):
    file = serializers.CharField()
    problem = serializers.CharField(help_text="missing, or sha256 mismatch")


class ArtifactsHealthSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    version = serializers.CharField(required=False, allow_null=True)
    checked = serializers.IntegerField(help_text="files whose checksum was compared")
    mismatches = ArtifactMismatchSerializer(many=True)
    path = serializers.CharField(required=False)
    error = serializers.CharField(required=False, help_text="why the bundle could not be checked at all")
    tier = serializers.CharField(allow_null=True, help_text="this worker's serving tier (null: engine not loaded)")


# ---- platform (recommendations/platform_api.py) ------------------------------------------------------------
class ArtifactVersionSerializer(serializers.Serializer):
    version = serializers.CharField(allow_null=True)
    created_at = serializers.CharField(allow_null=True)


class LlmMetricsSerializer(serializers.Serializer):
    enabled = serializers.BooleanField(help_text="LLM_BASE_URL is set")
    model = serializers.CharField(allow_null=True)
    counts = serializers.DictField(child=serializers.IntegerField(),
                                   help_text="batches, provider_calls, generated, cached, and fallback_<reason> "
                                             "(timeout, provider_error, malformed, rejected, missing, cooldown) per item")


class ServingWorkerSerializer(serializers.Serializer):
    worker = serializers.CharField(help_text="host:pid")
    weights_version = serializers.CharField()
    bundle_version = serializers.CharField()
    tier = serializers.CharField()
    seen_at = serializers.DateTimeField()


class BackgroundBuildSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=["queued", "running", "succeeded", "failed"])
    step = serializers.CharField(allow_null=True, help_text="the step running (or the last one run)")
    step_index = serializers.IntegerField(help_text="1-based; 0 before the first step")
    steps_total = serializers.IntegerField()
    steps = serializers.ListField(child=serializers.CharField())
    queued_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    bundle_version = serializers.CharField(allow_null=True, help_text="the bundle it published, once done")
    seconds = serializers.DictField(child=serializers.FloatField(), help_text="step -> seconds, for steps finished")
    peak_rss_mb = serializers.IntegerField(allow_null=True, help_text="the building process's peak memory so far")
    error = serializers.CharField(allow_null=True, help_text="the failure, one line (the admin shows the traceback)")


class PlatformStatusSerializer(serializers.Serializer):
    version = serializers.CharField()
    serving_tier = serializers.CharField(allow_null=True)
    serving_cache = serializers.DictField(child=serializers.IntegerField(), allow_null=True,
                                          help_text="entries, bytes, hits, misses of this worker's serving cache")
    artifacts = serializers.DictField(child=ArtifactVersionSerializer(), help_text="folder -> its manifest's version")
    uptime_s = serializers.FloatField()
    llm_explanations = LlmMetricsSerializer(help_text="this worker's LLM explanation counters")
    serving_workers = ServingWorkerSerializer(many=True, help_text="each serving worker's acknowledged weights, "
                                                                   "bundle and tier (heard from in the last minutes)")
    background_build = BackgroundBuildSerializer(
        allow_null=True, help_text="the build that follows set-up (semantic index, full serving bundle): step k of "
                                   "n, then done or failed; null when none was queued")


class ReadinessChecksSerializer(serializers.Serializer):
    database = serializers.CharField(help_text="ok or failed")
    redis = serializers.CharField(help_text="ok, failed or not configured")
    artifacts = serializers.CharField(help_text="ok or failed")


class ReadinessSerializer(serializers.Serializer):
    ready = serializers.BooleanField()
    not_ready = serializers.ListField(child=serializers.CharField(), help_text="what failed, one line each")
    checks = ReadinessChecksSerializer()


class LatencyTargetsSerializer(serializers.Serializer):
    p50 = serializers.FloatField()
    p95 = serializers.FloatField()
    p99 = serializers.FloatField()


class RouteLatencySerializer(LatencyTargetsSerializer):
    count = serializers.IntegerField()
    meets_targets = serializers.BooleanField()


class SloReportSerializer(serializers.Serializer):
    window = serializers.IntegerField(help_text="requests kept per route")
    targets_ms = LatencyTargetsSerializer()
    routes = serializers.DictField(child=RouteLatencySerializer(), help_text="'METHOD /route' -> latencies in ms")


class RecentEventSerializer(serializers.Serializer):
    movie_id = serializers.IntegerField()
    title = serializers.CharField()
    kind = serializers.ChoiceField(choices=Event.Kind.choices)
    value = serializers.FloatField(allow_null=True)
    occurred_at = serializers.DateTimeField()


class EventFeaturesSerializer(serializers.Serializer):
    """Your live feature state: what the next recommendation reflects."""

    user_id = serializers.IntegerField()
    recent_sequence = RecentEventSerializer(many=True)
    counters = serializers.DictField(child=serializers.IntegerField(), help_text="events per kind")
    ratings_mean = serializers.FloatField(allow_null=True)
    pending_events = serializers.IntegerField()
    model_state_version = serializers.IntegerField(help_text="the online learner's newest stored state (0: none)")


class ExplainedMovieSerializer(serializers.Serializer):
    movie_id = serializers.IntegerField()
    sentence = serializers.CharField(help_text="the LLM's sentence, or the template sentence when `llm` is false")
    llm = serializers.BooleanField()
    status = serializers.CharField(help_text="generated, cached, or why the template stayed")


class UserExplanationsSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    enabled = serializers.BooleanField(help_text="false: LLM explanations are not configured, and items is empty")
    detail = serializers.CharField(required=False, help_text="why items is empty, when enabled is false")
    items = ExplainedMovieSerializer(many=True, help_text="the asked-for movies this member was shown")


class ModelMetricsSerializer(serializers.Serializer):
    test = serializers.JSONField(allow_null=True, help_text="metric name -> value on the test split")
    valid = serializers.JSONField(allow_null=True, help_text="metric name -> value on the validation split")
    train_seconds = serializers.FloatField(allow_null=True)


class EnsembleMetricsSerializer(serializers.Serializer):
    weights = serializers.DictField(child=serializers.FloatField(), allow_null=True, help_text="model -> weight")
    weights_version = serializers.CharField(allow_null=True)
    selection = serializers.JSONField(allow_null=True, help_text="how the weights were chosen")
    metrics = serializers.JSONField(allow_null=True, help_text="the ensemble's metrics against its baseline (null: "
                                                               "not a finite number)")


class DatasetMetricsSerializer(serializers.Serializer):
    """One dataset's model cards: each model's metrics, and the served ensemble's when it was built on it."""

    updated_at = serializers.CharField(required=False, allow_null=True)
    models = serializers.DictField(child=ModelMetricsSerializer(), help_text="model name -> its metrics")
    ensemble = EnsembleMetricsSerializer(required=False)


class OfflineMetricsSerializer(serializers.Serializer):
    """Model-card metrics per dataset (a map: dataset name -> its metrics)."""


class OfflineMetricsScheme(OpenApiSerializerExtension):
    """OpenAPI: ``OfflineMetrics`` is a map from dataset name to ``DatasetMetrics``."""

    target_class = OfflineMetricsSerializer

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        dataset = auto_schema.resolve_serializer(DatasetMetricsSerializer, direction)
        return {"type": "object", "description": "Model-card metrics per dataset: dataset name -> its metrics.",
                "additionalProperties": dataset.ref}
