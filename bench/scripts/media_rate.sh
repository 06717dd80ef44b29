#!/usr/bin/env bash
# RTP relayed through openline-media and through rtpengine (Debian's rtpengine-daemon, userspace:
# bench/reference/media/rtpengine/rtpengine.conf, table = -1) in the same run, by the same
# script (shared rtp_relay_bench.py: ng offer/answer, then C udpblast streams of 172-byte RTP
# both ways), alternating server by server at each load. Servers pinned to CPU 1, load to CPU 0,
# as the anchors were. CPU per packet = the server's CPU time / packets relayed.
#   bench/scripts/media_rate.sh      # CALLS="50 250 500" (100, 500, 1,000 streams) at PPS=50,
#                                    # then FLAT="100 150" pps per stream on 1,000 streams;
#                                    # SECONDS_EACH=10 REPEAT=3 (FLAT=" " for none)
# Prints one line per server and load, then the ratio of packets per CPU-second.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MEDIA=$ROOT/bench/reference/media
CALLS=${CALLS:-50 250 500}
FLAT=${FLAT:-100 150}
SECONDS_EACH=${SECONDS_EACH:-10}
REPEAT=${REPEAT:-3}
"$ROOT/bench/scripts/install-bench-deps" >/dev/null
cargo build --release -q -p openline-media --manifest-path "$ROOT/Cargo.toml"
# shellcheck source=relays.sh
source "$ROOT/bench/scripts/relays.sh" openline-mediabench
run() { # server calls pps
  python3 "$MEDIA/rtpengine/rtp_relay_bench.py" --ng "${NG[$1]}" --calls "$2" --pps "$3" \
    --seconds "$SECONDS_EACH" --repeat "$REPEAT" --pid "${PID[$1]}" --gen-cpu "${GEN_CPU:-0}" 2>"$W/$1-$2-$3.err" \
    | grep '^RESULT' | sed "s/^RESULT/RESULT server=$1/"
}
# The packets per CPU-second a RESULT line shows (middle of the relayed range, middle of the CPU
# range; "a-b" ranges come from the three repeats).
per_cpu_s() {
  python3 - "$1" <<'PY'
import re, sys
line = sys.argv[1]
def mid(key):
    m = re.search(key + r"=([\d.]+)(?:-([\d.]+))?", line)
    a = float(m.group(1)); b = float(m.group(2) or m.group(1)); return (a + b) / 2
pps, cpu = mid("relayed_pps"), mid("relay_cpu_pct")
print(f"{pps / (cpu / 100):.0f} {1e6 * cpu / 100 / pps:.1f}")
PY
}
exec > >(tee "$W/results.txt") 2>&1
echo "# results also in $W/results.txt"
loads=()
for c in $CALLS; do loads+=("$c:50"); done
for p in $FLAT; do loads+=("500:$p"); done
for load in "${loads[@]}"; do
  c=${load%:*} p=${load#*:}
  declare -A per=()
  for server in openline rtpengine; do
    line=$(run $server "$c" "$p")
    echo "$line"
    read -r per_s us <<<"$(per_cpu_s "$line")"
    per[$server]=$per_s
    echo "  $server: $((2 * c)) streams x $p pps: $per_s packets per CPU-second ($us us/packet)"
  done
  python3 -c "print(f'  ratio openline/rtpengine at $((2 * c)) streams x $p pps: {${per[openline]}/${per[rtpengine]}:.2f}')"
done
