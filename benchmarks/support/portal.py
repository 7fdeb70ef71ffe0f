"""A real APEX ASGI server (uvicorn, HTTP + websockets) on a throw-away database, for browser journeys and benchmarks.

The server runs in its own process exactly as ``bin/run`` starts it, on the embedded default (SQLite,
in-memory channel layer, eager Celery) with the real ml-latest-small catalog imported, so the journeys
exercise the same code path a visitor does. Helpers run ``manage.py`` against the same database.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
CATALOG = REPO / "data" / "ml-latest-small"
SHARED_TMDB = REPO.parent / "shared" / "data" / "tmdb"
SETTINGS = os.environ.get("APEX_FLOWS_SETTINGS", "benchmarks.support.server_settings")
# Stripe in test mode: the journeys answer its calls with recorded responses (tests/flows/stripe_server.py)
STRIPE_TEST_KEY = "sk_test_51QApexOfflineFakeKeyForTests0000000000000000"
STRIPE_PRICES = {"STRIPE_PRICE_PRO": "price_1QApexPro000000000000000",
                 "STRIPE_PRICE_ENTERPRISE": "price_1QApexEnterprise000000000"}
CACHE = REPO / "var" / "flows"
# Whatever shapes the prepared database: a change to any of these rebuilds the cached copy.
SCHEMA_SOURCES = ("*/models.py", "*/models/*.py", "catalog/importers/*.py", "billing/plans.py",
                  "benchmarks/support/server_settings.py", "benchmarks/support/portal.py", "requirements.txt",
                  "recommendations/management/commands/build_serving_artifacts.py")
# ml_core is left out on purpose: it changes often and retraining takes minutes. After a change to the
# serving bundle's format, delete var/flows/ (CI starts from a clean clone, so it always builds fresh).
ENGINE_EPOCHS = 1  # training epochs per ensemble model: enough for real, distinct rankings
ENGINE_MODELS = ("sasrec", "lightgcn")


def schema_key() -> str:
    """A hash of the model, importer and dependency sources (the cache key of the prepared database)."""
    digest = hashlib.sha256()
    for pattern in SCHEMA_SOURCES:
        for path in sorted(REPO.glob(pattern)):
            if ".venv" not in path.parts:
                digest.update(str(path.relative_to(REPO)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PortalServer:
    """Prepare a database, start uvicorn on a free port, and stop it again."""

    def __init__(self, root: Path, extra_env: dict[str, str] | None = None) -> None:
        self.root = root
        self.extra_env = dict(extra_env or {})
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        env.update({
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "SQLITE_PATH": str(self.database),
            "ML_ARTIFACTS_DIR": str(self.artifacts),
            "APEX_SERVING_TIER": "1",  # the torch ensemble, on CPU here: ensemble weights change the rankings
            "DEBUG": "true",
            "ACCOUNT_EMAIL_VERIFICATION": "mandatory",
            "APEX_THREADS": "1",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "WARNING",
            "STRIPE_TEST_SECRET_KEY": STRIPE_TEST_KEY,  # test mode; the journeys answer Stripe with recorded fakes
            **STRIPE_PRICES,
        })
        env.update(self.extra_env)
        return env

    def manage(self, *args: str, timeout: float = 600) -> str:
        """Run ``manage.py`` against the server's database; returns stdout, raises with stderr on failure."""
        done = subprocess.run([sys.executable, str(REPO / "manage.py"), *args], cwd=REPO, env=self.env(),
                              capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}")
        return done.stdout

    def shell(self, code: str) -> str:
        """Run Python in a Django shell against the server's database (test set-up only)."""
        return self.manage("shell", "-c", code)

    @property
    def database(self) -> Path:
        return self.root / "portal.sqlite3"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    def prepare(self) -> None:
        """Database and serving artifacts: copied from the cache when their sources are unchanged, else built."""
        cached = CACHE / f"portal-{schema_key()}"
        if not (cached / "ready").exists():
            self.build()
            CACHE.mkdir(parents=True, exist_ok=True)
            for old in CACHE.glob("portal-*"):
                shutil.rmtree(old) if old.is_dir() else old.unlink()
            staging = CACHE / f".staging-{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            shutil.copyfile(self.database, staging / self.database.name)
            if self.artifacts.exists():
                shutil.copytree(self.artifacts, staging / "artifacts")
            (staging / "ready").write_text(schema_key())
            staging.rename(cached)
        else:
            shutil.copyfile(cached / self.database.name, self.database)
            if (cached / "artifacts").exists():
                shutil.copytree(cached / "artifacts", self.artifacts, dirs_exist_ok=True)

    def build(self) -> None:
        """Schema from the models, plans, the real ml-latest-small catalog, and a quickly trained serving bundle."""
        started = time.perf_counter()
        self.manage("migrate", "--run-syncdb", "--noinput", "-v", "0")
        self.manage("sync_plans")
        self.manage("import_movielens", str(CATALOG), "--quiet")
        if SHARED_TMDB.exists():  # directors and franchises for the knowledge-graph rows, when the data is here
            self.manage("import_tmdb", "--path", str(SHARED_TMDB), "--directors", str(SHARED_TMDB.parent / "hetrec2011"),
                        "--quiet")
        # The real engine, trained briefly on the catalog's ratings (Tier 1 serves it on CPU). The journeys
        # use the two fastest ensemble members: enough for a real blend whose weights change the ranking.
        self.manage("build_serving_artifacts", "--quick", "--epochs", str(ENGINE_EPOCHS), "--no-onnx",
                    "--models", ",".join(ENGINE_MODELS), timeout=1800)
        logger.info("portal database and serving bundle ready in %.1f s", time.perf_counter() - started)

    def start(self, wait_s: float = 90) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "apex_site.asgi:application", "--host", "127.0.0.1",
             "--port", str(self.port), "--log-level", "warning"],
            cwd=REPO, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited ({self.process.returncode}):\n{self.log()[-4000:]}")
            try:
                with urllib.request.urlopen(self.url + "/v1/platform/status", timeout=5):
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"the server did not answer within {wait_s} s:\n{self.log()[-4000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def email_link(self, *, to: str, pattern: str = r"https?://\S+/accounts/confirm-email/\S+/") -> str:
        """The newest link matching ``pattern`` in a console e-mail sent to ``to``."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = self.log()
            messages = [m for m in text.split("Content-Type: text/plain") if to in m]
            for message in reversed(messages):
                found = re.findall(pattern, message)
                if found:
                    return found[-1]
            time.sleep(0.2)
        raise AssertionError(f"no e-mail with {pattern!r} to {to} in the server log")

    def create_user(self, *, username: str, password: str, staff: bool = False, plan: str | None = None) -> None:
        """A member with a verified e-mail address (optionally staff) — the state after sign-up and verification."""
        self.shell(
            "from django.contrib.auth import get_user_model\n"
            "from allauth.account.models import EmailAddress\n"
            f"u = get_user_model().objects.create_user({username!r}, {username + '@example.com'!r}, {password!r},"
            f" is_staff={staff}, is_superuser={staff})\n"
            "EmailAddress.objects.create(user=u, email=u.email, verified=True, primary=True)\n")
