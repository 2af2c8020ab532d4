# Shared helpers for scripts/test, scripts/sam-local and scripts/dev. Sourced, not run.
# Everything installs into the project's own folders: .venv for the Python tools
# (moto, cargo-lambda, SAM CLI, cfn-lint), target/ for Rust and .local/ for the rest.
# The one exception is a system package (apt), which apt_install announces loudly.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${CS_VENV:-$ROOT/.venv}
LOGS=${CS_LOGS:-$ROOT/.local/logs}
T0=$(date +%s)
PIDS=()
# Commands run at exit after the services stop, e.g. stopping dockerd (see scripts/sam-local).
CLEANUP_HOOKS=()

export SAM_CLI_TELEMETRY=0 AWS_EC2_METADATA_DISABLED=true CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# Dummy credentials: nothing here talks to AWS, only to local stand-ins.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1

step() { echo "[$(( $(date +%s) - T0 ))s] $*"; }

# apt_install PACKAGE...: installs system packages with apt, saying so in a banner first, since
# this (unlike everything else here) changes the machine outside the project's folders.
apt_install() {
  echo "################################################################################"
  echo "## INSTALLING SYSTEM PACKAGES WITH APT: $*"
  echo "## (outside the project's folders; remove later with: apt-get remove $*)"
  echo "################################################################################"
  if [ "$(id -u)" != 0 ] || ! command -v apt-get > /dev/null; then
    echo "cannot install $*: needs root and apt-get" >&2
    return 1
  fi
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >> "$LOGS/apt.log" 2>&1; then
    apt-get update -qq > /dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >> "$LOGS/apt.log" 2>&1 \
      || { tail -n 20 "$LOGS/apt.log" >&2; return 1; }
  fi
  step "apt: installed $*"
}

cleanup() {
  local pid hook
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] || continue
    # Each service runs in its own process group (setsid), so children such as the
    # binaries cargo lambda watch spawns go too.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  done
  # Give them up to 3 s to exit cleanly (moto and sam need a moment), then kill what is left.
  local i alive
  for i in $(seq 1 30); do
    alive=0
    for pid in "${PIDS[@]:-}"; do
      [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && alive=1
    done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${PIDS[@]:-}"; do
    if [ -n "$pid" ]; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  for hook in "${CLEANUP_HOOKS[@]:-}"; do
    [ -n "$hook" ] && { $hook || true; }
  done
  return 0
}
# Keep the script's own exit status: cleanup's last test must not replace it.
trap 'status=$?; cleanup; exit $status' EXIT
trap 'exit 130' INT TERM

mkdir -p "$LOGS"
command -v curl > /dev/null || apt_install curl ca-certificates

# Stages (scripts/test): `stage NAME DESCRIPTION COMMAND...` runs COMMAND (a function or program,
# under `set -e`, in a subshell that stops what it started) with all its output in
# $LOGS/test-NAME.log, and prints one line: time since start, result, description, duration.
# On a terminal a pending line shows while it runs. Then it prints the log's `## ` banner lines
# (apt installs, skipped stages) and every cargo `test result:` line, verbatim: CI reads those.
# A failing stage prints its log's panics, its last 40 lines and the summary, and exits 1.
STAGE_ROWS=() TESTS_PASSED=0 TESTS_FAILED=0 TESTS_IGNORED=0 TEST_RESULT_LINES=0
stage() {
  local name=$1 what=$2 log=$LOGS/test-$1.log start status result took; shift 2
  start=$(date +%s)
  [ -t 1 ] && printf '[%4ss] ...   %s' "$(( start - T0 ))" "$what"
  set +e
  ( trap 'status=$?; cleanup; exit $status' EXIT; trap 'exit 130' INT TERM
    set -e; "$@" ) > "$log" 2>&1 < /dev/null
  status=$?
  set -e
  took=$(( $(date +%s) - start ))
  result=ok
  [ "$status" = 0 ] || result=FAIL
  [ "$status" = 0 ] && grep -q '^## SKIPPED' "$log" && result=skip
  [ -t 1 ] && printf '\r\033[K'
  printf '[%4ss] %-5s %s (%ss)\n' "$(( $(date +%s) - T0 ))" "$result" "$what" "$took"
  STAGE_ROWS+=("$name|$took|$result|$what")
  grep '^## ' "$log" || true
  count_test_results "$log"
  if [ "$status" != 0 ]; then
    # cargo test runs with --no-fail-fast, so its tail is the list of failed binaries: show
    # each panic (its place and message) first.
    if grep -q ' panicked at ' "$log"; then
      echo "---- panics in ${log#"$ROOT/"} (first 30) ----"
      grep -A1 ' panicked at ' "$log" | grep -v '^--$' | head -n 60
    fi
    echo "---- last 40 lines of ${log#"$ROOT/"} ----"
    tail -n 40 "$log"
    echo "---- end of ${log#"$ROOT/"} ----"
    summary
    exit 1
  fi
}

# count_test_results LOG: adds up LOG's cargo `test result:` lines, and prints them verbatim
# when the output is read by a program (a file or a pipe, as in CI, or CI set): CI reads them.
# On a terminal only their total is shown, in the summary, so a passing run fits one screen.
count_test_results() {
  local line passed failed ignored verbatim=1
  [ -t 1 ] && [ -z "${CI:-}" ] && verbatim=0
  while IFS= read -r line; do
    [ "$verbatim" = 1 ] && echo "$line"
    read -r passed failed ignored < <(sed -E 's/.* ([0-9]+) passed; ([0-9]+) failed; ([0-9]+) ignored;.*/\1 \2 \3/' <<< "$line")
    TESTS_PASSED=$(( TESTS_PASSED + passed )) TESTS_FAILED=$(( TESTS_FAILED + failed ))
    TESTS_IGNORED=$(( TESTS_IGNORED + ignored )) TEST_RESULT_LINES=$(( TEST_RESULT_LINES + 1 ))
  done < <(grep -E '^test result: .* [0-9]+ passed; [0-9]+ failed; [0-9]+ ignored;' "$1" || true)
}

# summary: the table of the stages run so far, and the cargo test totals.
summary() {
  local row name took result what
  echo
  printf '%-13s %6s  %s\n' stage time result
  for row in "${STAGE_ROWS[@]}"; do
    IFS='|' read -r name took result what <<< "$row"
    printf '%-13s %5ss  %-6s %s\n' "$name" "$took" "$result" "$what"
  done
  printf '%-13s %5ss\n' total "$(( $(date +%s) - T0 ))"
  [ "$TEST_RESULT_LINES" = 0 ] \
    || echo "cargo test: $TESTS_PASSED passed, $TESTS_FAILED failed, $TESTS_IGNORED ignored (summed over $TEST_RESULT_LINES \`test result:\` lines)"
  echo "full output of each stage: ${LOGS#"$ROOT/"}/test-<stage>.log"
}

# Starts "$@" in the background in a new session, logging to $LOGS/$name.log.
start_service() {
  local name=$1; shift
  mkdir -p "$LOGS"
  setsid "$@" > "$LOGS/$name.log" 2>&1 < /dev/null &
  PIDS+=("$!")
}

# free_port [HOST]: a TCP port free on HOST (default 127.0.0.1).
free_port() {
  python3 "$ROOT/scripts/free-port.py" "${1:-127.0.0.1}"
}

# wait_for URL SECONDS NAME: until the URL answers at all (any HTTP status).
wait_for() {
  local url=$1 seconds=$2 name=$3 i
  for i in $(seq 1 $(( seconds * 5 ))); do
    curl -s -o /dev/null --max-time 1 "$url" && return 0
    sleep 0.2
  done
  echo "$name did not come up; its log:" >&2
  tail -n 40 "$LOGS/$name.log" >&2 || true
  return 1
}

setup_tools() {
  step "tools: Python venv at $VENV"
  command -v python3 > /dev/null || apt_install python3 python3-venv
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$ROOT/.ci/requirements.txt"; then
    echo "pip install failed" >&2; return 1
  fi
  export PATH="$VENV/bin:$PATH"
  step "tools: $(sam --version 2>/dev/null), cfn-lint $(cfn-lint --version 2>/dev/null | awk '{print $2}')"
}

# setup_dev_tools: only what scripts/dev uses, moto and cargo-lambda, at the versions pinned in
# .ci/requirements.txt (setup_tools also installs the SAM CLI and cfn-lint, which dev never runs).
setup_dev_tools() {
  step "tools: Python venv at $VENV (moto, cargo-lambda)"
  command -v python3 > /dev/null || apt_install python3 python3-venv
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  local pins
  pins=$(grep -E '^(moto\[server\]|cargo-lambda)==' "$ROOT/.ci/requirements.txt")
  # shellcheck disable=SC2086 # one pin a word
  if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check $pins; then
    echo "pip install failed" >&2; return 1
  fi
  export PATH="$VENV/bin:$PATH"
}

# start_moto [HOST] [PORT]: starts moto_server (default: loopback, a free port), creates both
# queues, exports SQS_ENDPOINT, AWS_ENDPOINT_URL, SECRETS_ENDPOINT (moto serves S3 and Secrets
# Manager on the same port), RETRY_QUEUE_URL and DEAD_LETTER_QUEUE_URL.
start_moto() {
  local host=${1:-127.0.0.1} port=${2:-}
  [ -n "$port" ] || port=$(free_port "$host")
  start_service moto "$VENV/bin/moto_server" -H "$host" -p "$port"
  export SQS_ENDPOINT="http://$host:$port" AWS_ENDPOINT_URL="http://$host:$port" SECRETS_ENDPOINT="http://$host:$port"
  wait_for "$SQS_ENDPOINT/moto-api/" 30 moto
  read -r RETRY_QUEUE_URL DEAD_LETTER_QUEUE_URL < <("$VENV/bin/python" "$ROOT/scripts/moto-queues.py" "$SQS_ENDPOINT")
  export RETRY_QUEUE_URL DEAD_LETTER_QUEUE_URL
  step "moto (SQS) on $SQS_ENDPOINT"
}
