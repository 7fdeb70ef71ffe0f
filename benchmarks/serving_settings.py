"""Settings of the HTTP serving benchmark: the site's settings plus the bare endpoint's URLconf."""

from apex_site.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.serving_http"
