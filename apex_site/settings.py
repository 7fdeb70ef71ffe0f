"""APEX settings: every value from the environment, with a default that works out of the box.

Unset URLs give the embedded default (SQLite, local-memory cache, in-memory channel layer,
eager Celery). ``DATABASE_URL`` switches in PostgreSQL and ``REDIS_URL`` switches the cache,
Celery broker/result backend and Channels layer to Redis. See README's variable table.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from .env import env_bool, env_float, env_int, env_list, env_str
from .threads import pin_threads

BASE_DIR = Path(__file__).resolve().parent.parent
APEX_VERSION = "0.1.0"
APEX_THREADS = pin_threads()

# DEBUG and SECRET_KEY (README's variable table). The development key is public, so it signs nothing that
# reaches a real service: it is accepted only with DEBUG on and neither DATABASE_URL nor REDIS_URL set.
# With a real service configured, DEBUG defaults to off and a SECRET_KEY is required (bin/run makes one in
# var/secret_key for local use). pytest (it sets PYTEST_VERSION for its run) keeps the development defaults
# with the URLs set, as CI runs it: DEBUG on (pytest-django turns it off inside tests) and, without a key,
# a random one for the run, exported so the servers and workers the tests start sign with the same key.
DEV_SECRET_KEY = "dev-only-insecure-key-never-use-in-production"  # noqa: S105 - public on purpose
REAL_SERVICES = bool(env_str("DATABASE_URL") or env_str("REDIS_URL"))
_UNDER_PYTEST = bool(env_str("PYTEST_VERSION"))
DEBUG = env_bool("DEBUG", not REAL_SERVICES or _UNDER_PYTEST)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY and _UNDER_PYTEST and REAL_SERVICES:
    SECRET_KEY = os.environ["SECRET_KEY"] = secrets.token_urlsafe(50)
if not SECRET_KEY or SECRET_KEY == DEV_SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (the development key is public)")
    if REAL_SERVICES:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set when DATABASE_URL or REDIS_URL is set: the development key is public and "
            "would let anyone sign sessions and JWTs (bin/run generates one in var/secret_key)")
    SECRET_KEY = DEV_SECRET_KEY

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_ID = 1
SITE_NAME = env_str("SITE_NAME", "APEX")  # what e-mails and pages call the site (django.contrib.sites)
SITE_DOMAIN = env_str("SITE_DOMAIN", "localhost:8000")  # the public host[:port] links in e-mails point at

INSTALLED_APPS = [
    "daphne",
    "apex_site.apps.ApexAdminConfig",  # django.contrib.admin with the APEX operations site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc as static files: /docs works offline
    "channels",
    "allauth",
    "allauth.account",
    "djstripe",
    "accounts",
    "catalog",
    "events",
    "billing",
    "recommendations",
    "experiments",
]

MIDDLEWARE = [
    "apex_site.middleware.SecurityHeadersMiddleware",  # CSP + Permissions-Policy on every response
    "apex_site.middleware.ApiJsonErrorsMiddleware",  # /v1 errors are JSON in every mode (apex_site.errors)
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apex_site.slo.LatencyMiddleware",
    "apex_site.input_guard.InputGuardMiddleware",  # NUL/lone surrogates in path, query or form: 400
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "apex_site.unavailable.DatabaseUnavailableMiddleware",  # database unreachable in a view: 503 + Retry-After
]

ROOT_URLCONF = "apex_site.urls"
WSGI_APPLICATION = "apex_site.wsgi.application"
ASGI_APPLICATION = "apex_site.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
    if env_bool("DB_POOL", False) and DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # psycopg's connection pool (Django >= 5.1): an ASGI request borrows an open connection instead of
        # connecting (persistent connections and pooling exclude each other, so CONN_MAX_AGE is 0)
        DATABASES["default"]["CONN_MAX_AGE"] = 0
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1, "max_size": env_int("DB_POOL_MAX_SIZE", 8), "timeout": env_float("DB_POOL_TIMEOUT_S", 10.0)}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3",
                             "NAME": str(Path(env_str("SQLITE_PATH", str(BASE_DIR / "var" / "apex.sqlite3"))))}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# A request that cannot reach the database (down, connections or the pool exhausted) gets 503 with this
# Retry-After (apex_site.unavailable), never a 500.
DATABASE_RETRY_AFTER_S = env_int("DATABASE_RETRY_AFTER_S", 5)

# --- Redis: cache, Celery, Channels ------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    # one Redis connection pool per process (Django builds one per request context under ASGI: apex_site/cache.py)
    CACHES = {"default": {"BACKEND": "apex_site.cache.SharedRedisCache", "LOCATION": REDIS_URL}}
    # socket_timeout above channels_redis's 5 s blocking read: with redis-py 8 a bare URL gives a 5 s
    # timeout, and every websocket idle for 5 s crashed with "Timeout reading from ..." (tests/events).
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                  "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}]}}}
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "apex"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_RESULT_BACKEND = "cache+memory://"
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict = {
    # Events that missed the stream (Redis down at commit) are relayed, and pending entries of a dead
    # consumer reclaimed, every few seconds (recommendations.tasks).
    "relay-event-outbox": {"task": "recommendations.tasks.relay_event_outbox",
                           "schedule": env_float("EVENTS_RELAY_INTERVAL_S", 5.0)},
    # Quota counts are kept in Redis and added to the UsageCounter rows this often (docs/BILLING.md).
    "flush-usage-counters": {"task": "billing.tasks.flush_usage_counters",
                             "schedule": env_float("BILLING_USAGE_FLUSH_INTERVAL_S", 10.0)},
    # Served impressions are XADDed to a Redis stream by the request and stored from it (events.impressions).
    "store-impressions": {"task": "events.tasks.store_impressions",
                          "schedule": env_float("IMPRESSIONS_STORE_INTERVAL_S", 5.0)},
}
BILLING_USAGE_COUNTER = env_str("BILLING_USAGE_COUNTER", "redis")  # "database": count every call in PostgreSQL
IMPRESSIONS_STREAM = env_str("IMPRESSIONS_STREAM", "apex:impressions")  # Redis Stream of served lists
EVENTS_STREAM = env_str("EVENTS_STREAM", "apex:events")  # Redis Stream the outbox relays to
EVENTS_STREAM_GROUP = env_str("EVENTS_STREAM_GROUP", "apex-online")  # consumer group of the online learner
EVENTS_RECLAIM_IDLE_MS = env_int("EVENTS_RECLAIM_IDLE_MS", 30_000)  # reclaim a consumer's entries after this idle
EVENTS_REDELIVER_AFTER_S = env_float("EVENTS_REDELIVER_AFTER_S", 300.0)  # re-relay rows the stream lost
EVENTS_MIN_OCCURRED_AT = env_str("EVENTS_MIN_OCCURRED_AT", "1995-01-01")  # older event/rating times: refused
EVENTS_MAX_FUTURE_SKEW_S = env_float("EVENTS_MAX_FUTURE_SKEW_S", 300.0)  # times further ahead than this: refused
ONLINE_BATCH_SIZE = env_int("ONLINE_BATCH_SIZE", 256)  # stream entries per applied mini-batch
ONLINE_LEARNING_RATE = env_float("ONLINE_LEARNING_RATE", 1e-3)  # clipped to [1e-5, 1e-2] by the learner
ONLINE_ROLLBACK_DROP = env_float("ONLINE_ROLLBACK_DROP", 0.05)  # held-out hit-rate drop that rolls back
ONLINE_HOLDOUT_EVERY = env_int("ONLINE_HOLDOUT_EVERY", 10)  # held-out check every n SGD steps (off the push path)
ONLINE_CONSUME_LINGER_S = env_float("ONLINE_CONSUME_LINGER_S", 2.0)  # a consume run waits this long for more events
ONLINE_HOLDOUT_USERS = env_int("ONLINE_HOLDOUT_USERS", 8)  # users whose last rating is held out to check the ranker
ONLINE_SYNC_INTERVAL_S = env_float("ONLINE_SYNC_INTERVAL_S", 0.5)  # a web process checks for new online state this often
APEX_DEMOGRAPHICS_FILE = env_str("APEX_DEMOGRAPHICS_FILE", "")  # MovieLens u.user; "" = ../shared/data/ml-100k/u.user
PRIVACY_EPSILON_BUDGET = env_float("PRIVACY_EPSILON_BUDGET", 10.0)  # total ε per analyst

# --- Auth ---------------------------------------------------------------------------------
AUTH_USER_MODEL = "auth.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
ACCOUNT_LOGIN_METHODS = {"email", "username"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "username*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env_str("ACCOUNT_EMAIL_VERIFICATION", "mandatory")
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"  # rate limits by the real client IP
ACCOUNT_SIGNUP_REDIRECT_URL = "recommendations:onboarding"  # new people rate a few movies first
# Failed portal logins: 10/min per address and 5 per 5 min per account × address (the adapter keys "key" so);
# the account-wide backoff that spares the owner's own addresses is AUTH_BACKOFF's (accounts/lockout.py).
ACCOUNT_RATE_LIMITS = {"login_failed": env_str("ACCOUNT_RATE_LIMIT_LOGIN_FAILED", "10/m/ip,5/5m/key")}
# Load balancers / reverse proxies in front of APEX (addresses or CIDRs). X-Forwarded-For is honoured only when
# the direct peer is one of them, read right to left up to the first untrusted hop (apex_site/client_ip.py).
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", [])
# Sign-in backoff for /v1/auth/token, the portal and /admin/login/: free failures per bucket, then a wait of
# base_s * 2^k seconds (at most max_s) before the next attempt is evaluated; counts expire after window_s.
AUTH_BACKOFF = {
    "free_per_account_ip": env_int("AUTH_BACKOFF_FREE_PER_ACCOUNT_IP", 5),
    "free_per_ip": env_int("AUTH_BACKOFF_FREE_PER_IP", 20),
    "free_per_account": env_int("AUTH_BACKOFF_FREE_PER_ACCOUNT", 20),  # from addresses it never signed in from
    "base_s": env_float("AUTH_BACKOFF_BASE_S", 1.0),
    "max_s": env_float("AUTH_BACKOFF_MAX_S", 900.0),
    "window_s": env_float("AUTH_BACKOFF_WINDOW_S", 3600.0),
}
API_KEYS_MAX_PER_USER = env_int("API_KEYS_MAX_PER_USER", 10)  # active keys per member (operators may exceed it)

EMAIL_URL = env_str("EMAIL_HOST")
if EMAIL_URL:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = EMAIL_URL
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "APEX <noreply@apex.local>")

# --- DRF ----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "apex_site.schema.ApexAutoSchema",  # documents each view's error responses
    "EXCEPTION_HANDLER": "apex_site.errors.api_exception_handler",  # {"detail", "code"}
    # JWT first so an unauthenticated call gets 401 with a WWW-Authenticate header (not 403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.JWTAuthentication",  # simplejwt's, the token's user from process memory
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    # JSON by orjson (apex_site/renderers.py), the browsable API for people
    "DEFAULT_RENDERER_CLASSES": ["apex_site.renderers.ORJSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    # bounded nesting, no NUL or lone surrogate in any string or key (apex_site/parsers.py)
    "DEFAULT_PARSER_CLASSES": ["apex_site.parsers.StrictJSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    # DRF's own get_ident trusts any X-Forwarded-For without NUM_PROXIES; our throttles use apex_site.client_ip and
    # 0 keeps any other throttle on REMOTE_ADDR
    "NUM_PROXIES": 0,
    # every view has the burst limit per API key, member or address unless it names its own throttles
    "DEFAULT_THROTTLE_CLASSES": ["billing.throttles.BurstThrottle"],
    # anon_model: anonymous calls to the public endpoints that run a model, one budget per address (PublicModelRateThrottle)
    "DEFAULT_THROTTLE_RATES": {"burst": env_str("THROTTLE_BURST", "120/min"), "anon": env_str("THROTTLE_ANON", "60/min"),
                               "anon_model": env_str("THROTTLE_ANON_MODEL", "30/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "APEX API",
    "DESCRIPTION": "Movie recommendations, catalog, events and billing.",
    "VERSION": APEX_VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    # the ValidationError component 400 responses name, the area tags described and in order, Markdown descriptions
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "apex_site.schema.finish_schema"],
    "COMPONENT_SPLIT_REQUEST": True,  # request bodies get their own components (no readOnly fields to send)
    # /docs and /docs/redoc load their assets from our own static files, never from a CDN
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# The events API is metered by billing's throttle, named here so that events never imports billing (its sibling)
EVENTS_QUOTA_THROTTLE = "billing.quota.QuotaThrottle"
# Events carry the member's experiment arm; experiments' bucketing (above events) answers, named here likewise
EVENTS_ARM_RESOLVER = "experiments.assignment.member_arm_id"
# Experiments (docs/RUNNING_EXPERIMENTS.md): each member's result is CUPED-adjusted by the same metric over this many days
# before the start (0: unadjusted)
EXPERIMENTS_CUPED_DAYS = env_int("EXPERIMENTS_CUPED_DAYS", 14)
# ... and estimates a draft's arms off-policy from the served logs with the engine, which lives above experiments
EXPERIMENTS_OFFLINE_ESTIMATOR = "recommendations.weights_from_logs.experiment_arms_estimate"

API_JSON_MAX_DEPTH = env_int("API_JSON_MAX_DEPTH", 32)  # deeper JSON bodies: 400
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2_621_440)  # larger bodies: 413 (apex_site.errors)

# --- Stripe (dj-stripe) ---------------------------------------------------------------
STRIPE_LIVE_MODE = env_bool("STRIPE_LIVE_MODE", False)
STRIPE_TEST_SECRET_KEY = env_str("STRIPE_TEST_SECRET_KEY", "")
STRIPE_LIVE_SECRET_KEY = env_str("STRIPE_LIVE_SECRET_KEY", "")
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_USE_NATIVE_JSONFIELD = True
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"
STRIPE_PRICE_PRO = env_str("STRIPE_PRICE_PRO", "")  # Stripe Price ids for checkout (manage.py sync_plans)
STRIPE_PRICE_ENTERPRISE = env_str("STRIPE_PRICE_ENTERPRISE", "")

# --- ML / serving ---------------------------------------------------------------------
ML_ARTIFACTS_DIR = Path(env_str("ML_ARTIFACTS_DIR", str(BASE_DIR / "var" / "artifacts")))
# Visually similar movies (docs/VISUAL.md): `manage.py build_visual_index` writes the CLIP poster index here; without
# one the "Looks like this" row is left out and the visual endpoints answer 503.
VISUAL_INDEX_DIR = env_str("VISUAL_INDEX_DIR", "")  # "": ML_ARTIFACTS_DIR/visual (follows that setting)
POSTER_CACHE_DIR = Path(env_str("POSTER_CACHE_DIR", str(BASE_DIR / "var" / "posters")))  # fetched posters, kept
POSTER_CDN_URL = env_str("POSTER_CDN_URL", "https://image.tmdb.org/t/p")  # TMDB's image CDN
POSTER_SIZE = env_str("POSTER_SIZE", "w342")  # TMDB poster width; CLIP looks at 224 px
POSTER_FETCH_INTERVAL_S = env_float("POSTER_FETCH_INTERVAL_S", 0.1)  # at least this long between CDN requests

# --- Lakehouse and the nightly job (recommendations.nightly) ------------------------------------
LAKEHOUSE_ROOT = Path(env_str("LAKEHOUSE_ROOT", str(BASE_DIR / "var" / "lakehouse")))  # Delta tables
LAKEHOUSE_EVENTS_DIR = Path(env_str("LAKEHOUSE_EVENTS_DIR", str(BASE_DIR / "var" / "exports" / "events")))
LAKEHOUSE_DATASETS = env_list("LAKEHOUSE_DATASETS", ["ml-latest-small"])  # MovieLens ratings ingested nightly
NIGHTLY_DATASET = env_str("NIGHTLY_DATASET", "ml-latest-small")  # gold dataset the models are retrained on
NIGHTLY_MODELS = env_str("NIGHTLY_MODELS", "popularity,itemknn,ease")  # cheap full retrains; others fine-tune online
# the serving bundle the nightly retrain step rebuilds from gold (ml_core.serving_build; workers load it on reload)
NIGHTLY_SERVING_MODELS = env_list("NIGHTLY_SERVING_MODELS", ["sasrec", "lightgcn", "ease"])
NIGHTLY_MAX_EPOCHS = env_int("NIGHTLY_MAX_EPOCHS", 5)  # training epochs per serving model (never seconds)
# validation, weight selection and test on at most this many seeded members (every member of a smaller set):
# full ranking over 160k members x 60k movies would take the night
NIGHTLY_EVAL_USERS = env_int("NIGHTLY_EVAL_USERS", 10_000)
NIGHTLY_HOUR_UTC = env_int("NIGHTLY_HOUR_UTC", 3)
EVENTS_EXPORT_LAG_S = env_int("EVENTS_EXPORT_LAG_S", 60)  # export only events older than this (late commits)
CELERY_BEAT_SCHEDULE["nightly-lakehouse"] = {
    "task": "recommendations.tasks.run_nightly_pipeline",
    "schedule": crontab(hour=NIGHTLY_HOUR_UTC, minute=0),
}
# the demographic fairness report on the site's ratings (recommendations.fairness; shown in admin), after the retrain
FAIRNESS_HOUR_UTC = env_int("FAIRNESS_HOUR_UTC", (NIGHTLY_HOUR_UTC + 2) % 24)
CELERY_BEAT_SCHEDULE["nightly-fairness"] = {
    "task": "recommendations.tasks.run_fairness_report",
    "schedule": crontab(hour=FAIRNESS_HOUR_UTC, minute=30),
}
# Running experiments: results stored, guardrails applied, Thompson allocations recomputed (experiments.tasks)
CELERY_BEAT_SCHEDULE["monitor-experiments"] = {
    "task": "experiments.tasks.monitor_experiments",
    "schedule": env_float("EXPERIMENTS_MONITOR_INTERVAL_S", 300.0),
}
APEX_SERVING_TIER = env_str("APEX_SERVING_TIER", "")  # "", "1", "2" or "3"
# Ranked pools shared by the serving processes through Redis (ml_core/serving/cache.py), kept this long; 0: off.
APEX_SHARED_POOL_TTL_S = env_int("APEX_SHARED_POOL_TTL_S", 900) if REDIS_URL else 0
APEX_DATASET = env_str("APEX_DATASET", "ml-latest-small")
TMDB_API_KEY = env_str("TMDB_API_KEY", "")
# Optional LLM explanations (docs/LLM_EXPLANATIONS.md): any OpenAI-compatible endpoint (OpenRouter, vLLM, Ollama).
# Unset LLM_BASE_URL: the engine's template sentences only, and no request ever waits on a provider.
LLM_BASE_URL = env_str("LLM_BASE_URL", "")
LLM_API_KEY = env_str("LLM_API_KEY", "")
LLM_MODEL = env_str("LLM_MODEL", "")
if LLM_BASE_URL and not LLM_MODEL:
    raise ImproperlyConfigured("LLM_BASE_URL is set but LLM_MODEL is not (e.g. LLM_MODEL=openai/gpt-4o-mini)")
LLM_TIMEOUT_S = env_float("LLM_TIMEOUT_S", 2.5)  # the HTTP client's timeout for one batch request (no retries)
LLM_DEADLINE_S = env_float("LLM_DEADLINE_S", 3.0)  # the most an API request waits for its batch, all told
LLM_CACHE_TTL_S = env_int("LLM_CACHE_TTL_S", 7 * 24 * 3600)  # accepted sentences, keyed by (movie, facts) hash
LLM_COOLDOWN_S = env_float("LLM_COOLDOWN_S", 30.0)  # after a failed call, templates only for this long
SLO_TARGETS_MS = {"p50": env_float("SLO_P50_MS", 50.0), "p95": env_float("SLO_P95_MS", 200.0),
                  "p99": env_float("SLO_P99_MS", 500.0)}
SLO_WINDOW = env_int("SLO_WINDOW", 1000)  # requests kept per route

# --- i18n, static --------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "var" / "staticfiles")))
WHITENOISE_USE_FINDERS = DEBUG  # serve static straight from the app folders in development
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage" if not DEBUG
                    else "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Security (production) --------------------------------------------------------------
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True
    X_FRAME_OPTIONS = "DENY"

# Error reports (debug pages, mails) mask service URLs and any credentials in URLs (apex_site.errors).
DEFAULT_EXCEPTION_REPORTER_FILTER = "apex_site.errors.SecretMaskingFilter"
DEFAULT_EXCEPTION_REPORTER = "apex_site.errors.EncodableExceptionReporter"  # a lone surrogate cannot break it
# Every page's scripts and styles are static files (no inline code); posters come from TMDB's image CDN
# (image.tmdb.org, loaded by the browser; static/js/apex.js swaps in the placeholder when it cannot be reached),
# placeholders are data: URIs; the websocket is same-origin. /docs (Swagger UI, Redoc) is served from our static
# files; both style their widgets inline and Redoc runs a blob: worker.
CONTENT_SECURITY_POLICY = env_str(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https://image.tmdb.org; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'")
CONTENT_SECURITY_POLICY_DOCS = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                "img-src 'self' data: https:; worker-src 'self' blob:; connect-src 'self'; "
                                "object-src 'none'; base-uri 'self'; frame-ancestors 'none'")
PERMISSIONS_POLICY = env_str(
    "PERMISSIONS_POLICY",
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
