# shellcheck shell=bash
# The start every peer-ratio script here shares; sourced as
#   . "$(dirname "$0")/preamble.sh" DEFAULT_RATE NAME
# It sets ROOT, SIG, RATE (empty with SEARCH=1), DURATION, RUNS, COOLDOWN, W (a fresh work
# folder), OUT, PORT (the anchors' 5070), sources shared lib.sh and common.sh, makes the results
# folder for NAME, stops what a run started on exit, and builds the release openline.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
SIG=$ROOT/bench/reference/signaling
SEARCH=${SEARCH:-0}
if [ "$SEARCH" = 1 ]; then export RATE=; else export RATE=${RATE:-$1}; fi
export DURATION=${DURATION:-10} RUNS=${RUNS:-3} COOLDOWN=${COOLDOWN:-3}
W=$(mktemp -d "/tmp/openline-$2bench.XXXXXX")
export OUT=$W/results
PORT=5070
. "$SIG/lib.sh"
. "$ROOT/bench/scripts/common.sh"
mkout "$2"
trap 'uas_stop; kill $(cat "$W"/*.pid 2>/dev/null) 2>/dev/null; rm -f "$W"/*.db*' EXIT
cargo build --release -q -p openline-proxy --manifest-path "$ROOT/Cargo.toml"
