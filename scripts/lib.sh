# Shared helpers for scripts/test and scripts/dev. Sourced, not run.
# Everything installs into the project's own folders: .venv for the Python tools
# (moto, cargo-lambda, SAM CLI, cfn-lint) and target/ for Rust.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${CS_VENV:-$ROOT/.venv}
LOGS=${CS_LOGS:-$ROOT/.local/logs}
T0=$(date +%s)
PIDS=()

export SAM_CLI_TELEMETRY=0 AWS_EC2_METADATA_DISABLED=true CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# Dummy credentials: nothing here talks to AWS, only to moto on loopback.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1

step() { echo "[$(( $(date +%s) - T0 ))s] $*"; }

cleanup() {
  local pid
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] || continue
    # Each service runs in its own process group (setsid), so children such as the
    # binaries cargo lambda watch spawns go too.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  sleep 0.3
  for pid in "${PIDS[@]:-}"; do
    if [ -n "$pid" ]; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  return 0
}
# Keep the script's own exit status: cleanup's last test must not replace it.
trap 'status=$?; cleanup; exit $status' EXIT
trap 'exit 130' INT TERM

# Starts "$@" in the background in a new session, logging to $LOGS/$name.log.
start_service() {
  local name=$1; shift
  mkdir -p "$LOGS"
  setsid "$@" > "$LOGS/$name.log" 2>&1 < /dev/null &
  PIDS+=("$!")
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for URL SECONDS NAME: until the URL answers at all (any HTTP status).
wait_for() {
  local url=$1 seconds=$2 name=$3 i
  for i in $(seq 1 $(( seconds * 5 ))); do
    if python3 - "$url" <<'PY' 2>/dev/null; then return 0; fi
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError:
    pass
PY
    sleep 0.2
  done
  echo "$name did not come up; its log:" >&2
  tail -n 40 "$LOGS/$name.log" >&2 || true
  return 1
}

setup_tools() {
  step "tools: Python venv at $VENV"
  command -v python3 > /dev/null || { apt-get update -qq && apt-get install -y -qq python3 python3-venv; }
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$ROOT/.ci/requirements.txt"; then
    echo "pip install failed" >&2; return 1
  fi
  export PATH="$VENV/bin:$PATH"
  step "tools: $(sam --version 2>/dev/null), cfn-lint $(cfn-lint --version 2>/dev/null | awk '{print $2}')"
}

# Starts moto_server on a free port, creates both queues, exports SQS_ENDPOINT, RETRY_QUEUE_URL
# and DEAD_LETTER_QUEUE_URL.
start_moto() {
  local port; port=$(free_port)
  start_service moto "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port"
  export SQS_ENDPOINT="http://127.0.0.1:$port" AWS_ENDPOINT_URL="http://127.0.0.1:$port" SECRETS_ENDPOINT="http://127.0.0.1:$port"
  wait_for "$SQS_ENDPOINT/moto-api/" 30 moto
  read -r RETRY_QUEUE_URL DEAD_LETTER_QUEUE_URL < <("$VENV/bin/python" - <<PY
import boto3
sqs = boto3.client("sqs", endpoint_url="$SQS_ENDPOINT")
dead = sqs.create_queue(QueueName="currents-dead-letter")["QueueUrl"]
arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
retry = sqs.create_queue(QueueName="currents-retry", Attributes={
    "VisibilityTimeout": "360",
    "RedrivePolicy": '{"deadLetterTargetArn":"%s","maxReceiveCount":"500"}' % arn})["QueueUrl"]
print(retry, dead)
PY
)
  export RETRY_QUEUE_URL DEAD_LETTER_QUEUE_URL
  step "moto (SQS) on $SQS_ENDPOINT"
}
