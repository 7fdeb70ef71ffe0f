#!/usr/bin/env bash
# A fresh probe from outside (issue 14): bin/run on PostgreSQL (database apex_probe, recreated) and its own Redis on
# :6391; schemathesis CLI on every operation (anonymous and an API key, EXAMPLES per operation); then 6,000 events
# (N) while Redis restarts twice and the Celery worker is SIGKILLed (benchmarks/live_burst.py); accepted = stored =
# applied once, and the pool's connections afterwards. Results under $PROBE_DIR (default /tmp/probe).
set -uo pipefail
cd "$(dirname "$0")/.."
P=${PROBE_DIR:-/tmp/probe}; mkdir -p $P; export PROBE_DIR=$P
redis-server --port 6391 --save '' --appendonly no --daemonize yes --logfile $P/redis.log
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/apex_probe REDIS_URL=redis://127.0.0.1:6391/0
export SECRET_KEY=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(50))')
export ML_ARTIFACTS_DIR=$P/artifacts SECURE_SSL_REDIRECT=false PORT=8765 THROTTLE_BURST=100000/min THROTTLE_ANON=100000/min THROTTLE_ANON_MODEL=100000/min
psql -h 127.0.0.1 -U postgres -q -d postgres -c "DROP DATABASE IF EXISTS apex_probe" -c "CREATE DATABASE apex_probe"
t=$(date +%s)
.venv/bin/python manage.py migrate --noinput -v 0 && .venv/bin/python manage.py sync_plans >/dev/null 2>&1
.venv/bin/python manage.py import_movielens data/ml-latest-small > $P/import.log 2>&1
.venv/bin/python manage.py build_serving_artifacts --quick --epochs 1 --models sasrec,lightgcn,ease > $P/build.log 2>&1
echo "setup $(( $(date +%s) - t ))s"
.venv/bin/python manage.py shell -c "
from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from accounts.services import api_key_create, onboarding_complete
from billing.services import account_plan_set
from billing.models import Plan
u = get_user_model().objects.create_user('prober', 'prober@example.com', 'probe-password-not-secret')
EmailAddress.objects.create(user=u, email=u.email, verified=True, primary=True)
onboarding_complete(user=u, favourite_genres=['Drama'])
account_plan_set(user=u, plan=Plan.objects.get(code='enterprise'), subscription_id='sub_probe', status='active')
key, raw = api_key_create(user=u, name='probe')
open('$P/key','w').write(raw)
open('$P/uid','w').write(str(u.pk))
" 2>&1 | tail -3
bin/run > $P/server.log 2>&1 &
SERVER=$!
for _ in $(seq 120); do curl -sf http://127.0.0.1:8765/v1/platform/readiness >/dev/null && break; sleep 1; done
echo "server up: $(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8765/v1/platform/status)"
KEY=$(cat $P/key)
for who in anon key; do
  H=(); [ $who = key ] && H=(-H "Authorization: Api-Key $KEY")
  timeout 900 .venv/bin/schemathesis run http://127.0.0.1:8765/v1/schema "${H[@]}" -n ${EXAMPLES:-60} --seed 7 \
     -c not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
     --report ndjson --report-ndjson-path $P/st_$who.ndjson > $P/st_$who.log 2>&1
  echo "schemathesis $who rc=$?"; tail -15 $P/st_$who.log
done
.venv/bin/python benchmarks/live_burst.py "${N:-6000}"
kill $SERVER; sleep 3  # bin/run stops its server, worker and beat
for pid in $(pgrep -f "celery -A apex_site"); do grep -q ":6391" /proc/$pid/environ 2>/dev/null && kill $pid; done
redis-cli -p 6391 shutdown nosave 2>/dev/null
echo done
