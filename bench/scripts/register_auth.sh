#!/usr/bin/env bash
# REGISTER with digest (REGISTER -> 401 -> REGISTER with credentials -> 200), Openline against
# Kamailio in the same run: the same SIPp scenario (shared/bench/signaling/scenarios/
# register_auth.xml), the same user set, the same offered rate, the same measuring code
# (shared lib.sh `measure`: the server's process-tree CPU from /proc), runs alternating
# between the two servers. Openline stores bindings in SQLite on disk (WAL, synchronous=FULL);
# Kamailio keeps usrloc in memory and derives passwords from user names (its bench config).
#   bench/scripts/register_auth.sh            # RATE=1000 DURATION=10 RUNS=3
# Prints one summary line per server and the ratio of CPU per REGISTER.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SIG=$ROOT/../shared/bench/signaling
export RATE=${RATE:-1000} DURATION=${DURATION:-10} RUNS=${RUNS:-3} COOLDOWN=${COOLDOWN:-3}
W=$(mktemp -d /tmp/openline-bench.XXXXXX)
export OUT=$W/results
PORT=5070   # the anchors' port; the scenario registers users @127.0.0.1 (the realm)
. "$SIG/lib.sh"
mkout register_auth
trap 'kill $(cat "$W"/*.pid 2>/dev/null) 2>/dev/null || true' EXIT

cargo build --release -q -p openline-proxy --manifest-path "$ROOT/Cargo.toml"
BIN=$ROOT/target/release/openline
N=$((RATE * DURATION))
# One user set for both: Kamailio's rule is password "pw" + user name.
awk -v n="$N" 'BEGIN{print "SEQUENTIAL"; for(i=1;i<=n;i++) printf "bench%d;pwbench%d\n", i, i}' > "$W/users.csv"
awk -v n="$N" 'BEGIN{for(i=1;i<=n;i++) printf "bench%d@127.0.0.1 pwbench%d\n", i, i}' > "$W/users.txt"
DB=sqlite://$W/openline.db
"$BIN" user import "$W/users.txt" --db "$DB" >/dev/null

start_kamailio() {
  taskset -c 1 kamailio -f "$SIG/kamailio.cfg" -DD -E -m 1024 -M 16 -n 2 -A WITH_AUTH > "$W/kam.log" 2>&1 &
  echo $! > "$W/server.pid"; sleep 1.5
}
start_openline() {
  RUST_LOG=warn taskset -c 1 "$BIN" serve --domain 127.0.0.1 --listen udp:127.0.0.1:$PORT --db "$DB" > /dev/null 2> "$W/openline.log" &
  echo $! > "$W/server.pid"; sleep 1
}
stop_server() { kill "$(cat "$W/server.pid")"; wait "$(cat "$W/server.pid")" 2>/dev/null || true; rm -f "$W/server.pid"; sleep 1; }

export TARGET=127.0.0.1:$PORT SERVER_PID_FILE=$W/server.pid
run_at() { measure "$1" "$RATE" "" -- -sf "$SIG/scenarios/register_auth.xml" -inf "$W/users.csv"; }
for i in $(seq "$RUNS"); do
  for server in kamailio openline; do
    "start_$server"
    run_at "register_auth_$server"
    stop_server
    sleep "$COOLDOWN"
  done
done

summary() { # test -> median server us/op and the pass count
  awk -F'\t' -v t="$1" '$2==t {u[++n]=$16; if($21=="pass") p++}
    function med(a,n,  i,j,x){for(i=1;i<=n;i++)for(j=i+1;j<=n;j++)if(a[j]<a[i]){x=a[i];a[i]=a[j];a[j]=x} return a[int((n+1)/2)]}
    END{printf "%s %d/%d\n", med(u,n), p, n}' "$RESULTS"
}
read -r kus kpass < <(summary register_auth_kamailio)
read -r ous opass < <(summary register_auth_openline)
echo "register_auth rate=$RATE/s duration=${DURATION}s kamailio_us_per_reg=$kus (passed $kpass) openline_us_per_reg=$ous (passed $opass) openline/kamailio=$(awk -v o="$ous" -v k="$kus" 'BEGIN{printf "%.2f", o/k}')"
echo "details: $RESULTS"
