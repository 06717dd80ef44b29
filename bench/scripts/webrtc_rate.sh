#!/usr/bin/env bash
# Bridged WebRTC calls through openline-media and through rtpengine (Debian's rtpengine-daemon
# 10.5, userspace: bench/reference/media/rtpengine/rtpengine.conf) in the same run, by the same
# load (target/release/webrtc_load: each call a str0m browser with ICE, DTLS-SRTP and Opus, and
# a plain RTP/AVP phone, set up with rtpengine's ng flags), alternating server by server at
# each load, REPEAT times. Servers pinned to CPU 1, load to CPU 0. CPU per packet = the
# server's CPU time / packets relayed (both directions: SRTP to RTP and back).
#   bench/scripts/webrtc_rate.sh      # CALLS="50 200" at PPS=50, SECONDS_EACH=10 REPEAT=3
# Prints one line per server, load and repeat, then the ratio of packets per CPU-second.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MEDIA=$ROOT/bench/reference/media
CALLS=${CALLS:-50 200}
PPS=${PPS:-50}
SECONDS_EACH=${SECONDS_EACH:-10}
REPEAT=${REPEAT:-3}
"$ROOT/bench/scripts/install-bench-deps" >/dev/null
cargo build --release -q -p openline-media -p openline-bench --bin openline-media --bin webrtc_load \
  --manifest-path "$ROOT/Cargo.toml"
# shellcheck source=relays.sh
source "$ROOT/bench/scripts/relays.sh" openline-webrtcbench
exec > >(tee "$W/results.txt") 2>&1
echo "# results also in $W/results.txt"
for c in $CALLS; do
  declare -A us=([openline]="" [rtpengine]="")
  for r in $(seq "$REPEAT"); do
    for server in openline rtpengine; do
      line=$(timeout 120 taskset -c "${GEN_CPU:-0}" "$ROOT/target/release/webrtc_load" \
        --ng "${NG[$server]}" --pid "${PID[$server]}" --calls "$c" --pps "$PPS" \
        --seconds "$SECONDS_EACH" 2>"$W/$server-$c-$r.err" | grep '^RESULT') \
        || { echo "$server at $c calls failed:"; tail -5 "$W/$server-$c-$r.err"; exit 1; }
      echo "${line/RESULT/RESULT server=$server}"
      us[$server]+=" $(sed -E 's/.*us_per_packet=([0-9.]+).*/\1/' <<<"$line")"
      # rtpengine keeps a call until told; both relays start each load empty.
      sleep 2
    done
  done
  python3 - "$c" "$PPS" "${us[openline]}" "${us[rtpengine]}" <<'PY'
import statistics, sys
calls, pps, ours, theirs = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()
o, t = statistics.median(map(float, ours)), statistics.median(map(float, theirs))
print(f"  {calls} calls x {pps} pps each way: openline {o:.1f} us/packet, rtpengine {t:.1f} us/packet;"
      f" ratio openline/rtpengine packets per CPU-second: {t / o:.2f}")
PY
done
