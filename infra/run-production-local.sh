#!/usr/bin/env bash
# Start the production shape on this machine: SeaweedFS (S3), then the web tier, two SCP processes,
# two ingest workers, a derive and a prefetch worker, and beat — all against the machine's
# PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379). Ctrl-C stops everything.
#
#   infra/run-production-local.sh            # web :8000, SCPs :11112 and :11113
#   SKYLIGHT_RUN_DIR=/tmp/sky infra/run-production-local.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
RUN_DIR=${SKYLIGHT_RUN_DIR:-$PWD/var/production-local}
mkdir -p "$RUN_DIR/weed" "$RUN_DIR/logs"

export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/skylight_local}
export CELERY_BROKER_URL=${CELERY_BROKER_URL:-redis://127.0.0.1:6379/1}
export SKYLIGHT_S3_ENDPOINT_URL=${SKYLIGHT_S3_ENDPOINT_URL:-http://127.0.0.1:8333}
export SKYLIGHT_S3_BUCKET=${SKYLIGHT_S3_BUCKET:-skylight}
export SKYLIGHT_S3_ACCESS_KEY_ID=${SKYLIGHT_S3_ACCESS_KEY_ID:-skylight}
export SKYLIGHT_S3_SECRET_ACCESS_KEY=${SKYLIGHT_S3_SECRET_ACCESS_KEY:-skylight-local-secret}
export SKYLIGHT_SECRET_KEY=${SKYLIGHT_SECRET_KEY:-local-production-shape-not-secret-0123456789}
export SKYLIGHT_DATA_DIR=${SKYLIGHT_DATA_DIR:-$RUN_DIR/data}
WEB_PORT=${WEB_PORT:-8000}
SCP_PORTS=${SCP_PORTS:-"11112 11113"}

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

start() {  # start NAME COMMAND...
  local name=$1; shift
  "$@" >"$RUN_DIR/logs/$name.log" 2>&1 &
  pids+=($!)
  echo "started $name (pid $!, log $RUN_DIR/logs/$name.log)"
}

if ! curl -s -o /dev/null "$SKYLIGHT_S3_ENDPOINT_URL"; then
  cat >"$RUN_DIR/s3.json" <<JSON
{"identities":[{"name":"skylight","credentials":[{"accessKey":"$SKYLIGHT_S3_ACCESS_KEY_ID","secretKey":"$SKYLIGHT_S3_SECRET_ACCESS_KEY"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
JSON
  s3_port=${SKYLIGHT_S3_ENDPOINT_URL##*:}
  start seaweedfs "$VENV/bin/weed" server -dir="$RUN_DIR/weed" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -s3 -s3.port="$s3_port" -s3.config="$RUN_DIR/s3.json" -master.telemetry=false -volume.max=0
  for _ in $(seq 1 120); do curl -s -o /dev/null "$SKYLIGHT_S3_ENDPOINT_URL" && break; sleep 0.5; done
  curl -s -o /dev/null "$SKYLIGHT_S3_ENDPOINT_URL" || { echo "SeaweedFS did not start; see $RUN_DIR/logs/seaweedfs.log"; exit 1; }
fi

psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname='${DATABASE_URL##*/}'" | grep -q 1 \
  || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE \"${DATABASE_URL##*/}\""
"$VENV/bin/python" manage.py ensure_bucket
"$VENV/bin/python" manage.py migrate --noinput
"$VENV/bin/python" manage.py collectstatic --noinput >/dev/null
"$VENV/bin/python" manage.py seed_demo --no-studies

start web env MALLOC_ARENA_MAX=2 "$VENV/bin/gunicorn" config.wsgi --bind "127.0.0.1:$WEB_PORT" --workers 2 --worker-class gthread \
  --threads 8 --timeout 600
for port in $SCP_PORTS; do
  start "scp-$port" "$VENV/bin/python" manage.py runscp --port "$port"
done
start worker-ingest-1 "$VENV/bin/celery" -A config worker -Q ingest -c 1 -n ingest1@%h --prefetch-multiplier 1 -O fair
start worker-ingest-2 "$VENV/bin/celery" -A config worker -Q ingest -c 1 -n ingest2@%h --prefetch-multiplier 1 -O fair
start worker-derive "$VENV/bin/celery" -A config worker -Q derive,prefetch -c 1 -n derive@%h
start beat "$VENV/bin/celery" -A config beat --schedule "$RUN_DIR/celerybeat-schedule"
echo "web http://127.0.0.1:$WEB_PORT  DICOM on ports: $SCP_PORTS  (Ctrl-C stops all)"
wait
