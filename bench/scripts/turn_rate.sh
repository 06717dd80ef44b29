#!/usr/bin/env bash
# STUN and TURN served by openline-media and by coturn 4.6 (its bench config,
# bench/reference/media/coturn/turnserver.conf) in the same run, by the same shared script
# (turn_bench.py): Binding requests/s (C stunload), Allocate/s (401 + Allocate + Refresh 0), and
# relayed ChannelData with coturn's own turnutils_uclient to turnutils_peer (an echo), server
# pinned to CPU 1, load to CPU 0.
#   bench/scripts/turn_rate.sh     # PARTS="binding alloc relay" RELAY="50:20 200:20 200:5"
#                                  # (clients:interval-ms) REPEAT=3
# Prints the RESULT lines of both servers, then the ratios per CPU-second.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MEDIA=$ROOT/bench/reference/media
PARTS=${PARTS:-binding alloc relay}
RELAY=${RELAY:-50:20 200:20 200:5}
REPEAT=${REPEAT:-3}
GEN=${GEN_CPU:-0}
"$ROOT/bench/scripts/install-bench-deps" >/dev/null
cargo build --release -q -p openline-media --manifest-path "$ROOT/Cargo.toml"
W=$(mktemp -d /tmp/openline-turnbench.XXXXXX)
trap 'kill $(cat "$W/openline.pid" 2>/dev/null) 2>/dev/null; "$MEDIA/servers.sh" stop coturn >/dev/null; "$MEDIA/servers.sh" stop peer >/dev/null' EXIT
exec > >(tee "$W/results.txt") 2>&1
echo "# results also in $W/results.txt"
# The same user, realm and peer rules as coturn's bench config; no per-user quota, as there.
taskset -c "${SERVER_CPU:-1}" "$ROOT/target/release/openline-media" --turn udp:127.0.0.1:3479 \
  --turn-user bench:benchpass --realm bench.local --turn-allow-loopback \
  --turn-ports 40000-48999 --turn-user-quota 1000000 \
  --control udp:127.0.0.1:0 --ports 20000-29999 > "$W/openline.out" 2>&1 &
echo $! > "$W/openline.pid"
"$MEDIA/servers.sh" start coturn > "$W/coturn.start"
"$MEDIA/servers.sh" start peer > "$W/peer.start"
sleep 1
declare -A SERVER=([openline]=127.0.0.1:3479 [coturn]=127.0.0.1:3478)
declare -A PID=([openline]=$(cat "$W/openline.pid") [coturn]=$(cat /tmp/media-bench/coturn.pid))
PEER_PID=$(cat /tmp/media-bench/peer.pid)
bench() { # server part args...
  local s=$1 part=$2; shift 2
  python3 "$MEDIA/coturn/turn_bench.py" "$part" --server "${SERVER[$s]}" --pid "${PID[$s]}" \
    --gen-cpu "$GEN" --repeat "$REPEAT" "$@" 2>>"$W/$s-$part.err" | grep '^RESULT' | sed "s/^RESULT/RESULT server=$s/"
}
# The middle of a "a-b (med m)" range, or the single value, of KEY in a RESULT line.
value() {
  python3 - "$1" "$2" <<'PY'
import re, sys
m = re.search(re.escape(sys.argv[2]) + r"=([\d.]+)(?:-([\d.]+))?(?: \(med ([\d.]+)\))?", sys.argv[1])
print(m.group(3) or m.group(1) if m else "nan")
PY
}
ratio() { # label openline-line coturn-line rate-key
  python3 - "$1" "$(value "$2" "$4")" "$(value "$2" server_cpu_pct)" "$(value "$3" "$4")" "$(value "$3" server_cpu_pct)" <<'PY'
import sys
label, r1, c1, r2, c2 = sys.argv[1], *map(float, sys.argv[2:])
print(f"  {label}: throughput {r1:.0f} vs {r2:.0f} ({r1 / r2:.2f}x); per CPU-second "
      f"{r1 / (c1 / 100):.0f} vs {r2 / (c2 / 100):.0f} ({(r1 / c1) / (r2 / c2):.2f}x)")
PY
}
for part in $PARTS; do
  case $part in
  binding)
    o=$(bench openline binding --sockets 16 --window 8); echo "$o"
    c=$(bench coturn binding --sockets 16 --window 8); echo "$c"
    ratio "STUN Binding, 16 sockets x 8 in flight" "$o" "$c" ok_per_s ;;
  alloc)
    o=$(bench openline alloc --sockets 16); echo "$o"
    c=$(bench coturn alloc --sockets 16); echo "$c"
    ratio "TURN Allocate (401 + Allocate + Refresh 0), 16 at once" "$o" "$c" allocs_per_s ;;
  relay)
    for load in $RELAY; do
      n=${load%:*} z=${load#*:}
      o=$(bench openline relay --clients "$n" --interval-ms "$z" --send-seconds 12 --peer-pid "$PEER_PID"); echo "$o"
      c=$(bench coturn relay --clients "$n" --interval-ms "$z" --send-seconds 12 --peer-pid "$PEER_PID"); echo "$c"
      ratio "TURN ChannelData, $n clients every $z ms" "$o" "$c" "relayed_pkts_s(2x echoed)"
    done ;;
  esac
done
