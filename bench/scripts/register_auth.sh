#!/usr/bin/env bash
# REGISTER with digest (REGISTER -> 401 -> REGISTER with credentials -> 200), Openline against
# Kamailio in the same run: the same SIPp scenario (bench/reference/signaling/scenarios/
# register_auth.xml), the same user set, the same offered rate, the same measuring code
# (shared lib.sh `measure`: the server's process-tree CPU from /proc), runs alternating
# between the two servers. Openline stores bindings in SQLite on disk (WAL, synchronous=FULL);
# Kamailio keeps usrloc in memory and derives passwords from user names (its bench config).
#   bench/scripts/register_auth.sh            # RATE=1000 DURATION=10 RUNS=3
#   SEARCH=1 bench/scripts/register_auth.sh   # the anchors' method: each server's highest clean
#                                             # rate (lib.sh search_max), CPU per REGISTER there
#                                             # (SERVERS="openline" searches one of them)
# Before every run the server is restarted with no bindings (Kamailio: usrloc is in memory;
# Openline: a copy of a database holding only the users), so every REGISTER adds a binding.
# Prints one summary line per server and the ratio of CPU per REGISTER.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SIG=$ROOT/bench/reference/signaling
SEARCH=${SEARCH:-0}
if [ "$SEARCH" = 1 ]; then export RATE=; else export RATE=${RATE:-1000}; fi
export DURATION=${DURATION:-10} RUNS=${RUNS:-3} COOLDOWN=${COOLDOWN:-3}
# Pinning the server to one core is for the fixed-rate comparison; the search lets both servers
# use the machine as the anchors did (Kamailio: 2 workers).
PIN=${PIN:-$([ "$SEARCH" = 1 ] && echo "" || echo "taskset -c 1")}
W=$(mktemp -d /tmp/openline-bench.XXXXXX)
export OUT=$W/results
PORT=5070   # the anchors' port; the scenario registers users @127.0.0.1 (the realm)
. "$SIG/lib.sh"
. "$ROOT/bench/scripts/common.sh"
mkout register_auth
# Keep the results, drop the databases and user lists.
trap 'kill $(cat "$W"/*.pid 2>/dev/null) 2>/dev/null; cp "$W/openline.log" "$W/results/" 2>/dev/null; rm -f "$W"/*.db* "$W"/users.*' EXIT

cargo build --release -q -p openline-proxy --manifest-path "$ROOT/Cargo.toml"
# OPENLINE_BIN compares another build (A/B); OPENLINE_ARGS adds serve options.
BIN=${OPENLINE_BIN:-$ROOT/target/release/openline}
N=${USERS:-$(( ${RATE:-16000} * DURATION ))}
# One user set for both: Kamailio's rule is password "pw" + user name.
awk -v n="$N" 'BEGIN{print "SEQUENTIAL"; for(i=1;i<=n;i++) printf "bench%d;pwbench%d\n", i, i}' > "$W/users.csv"
awk -v n="$N" 'BEGIN{for(i=1;i<=n;i++) printf "bench%d@127.0.0.1 pwbench%d\n", i, i}' > "$W/users.txt"
"$BIN" user import "$W/users.txt" --db "sqlite://$W/users.db" >/dev/null
DB=sqlite://$W/openline.db

start_kamailio() {
  $PIN kamailio -f "$SIG/kamailio.cfg" -DD -E -m 1024 -M 16 -n 2 -A WITH_AUTH > "$W/kam.log" 2>&1 &
  echo $! > "$W/server.pid"; sleep 1.5
}
start_openline() {
  rm -f "$W"/openline.db*; cp "$W/users.db" "$W/openline.db"
  RUST_LOG=${OPENLINE_LOG:-warn} $PIN "$BIN" serve --domain 127.0.0.1 --listen udp:127.0.0.1:$PORT --db "$DB" ${OPENLINE_ARGS:-} > /dev/null 2> "$W/openline.log" &
  echo $! > "$W/server.pid"; sleep 1
}

export TARGET=127.0.0.1:$PORT SERVER_PID_FILE=$W/server.pid
set +e # from here a failing SIPp run is a result (lib.sh's verdict), not a reason to stop
run_at() { measure "$1" "$RATE" "" -- -sf "$SIG/scenarios/register_auth.xml" -inf "$W/users.csv"; }
if [ "$SEARCH" = 1 ]; then
  # lib.sh drives the search and calls run_at <rate>; PRE_RUN_HOOK runs in a child shell, so
  # the restart happens here, in run_at, with the server named by $server.
  run_at() { stop_server; "start_$server"; measure "register_auth_$server" "$1" "" -- -sf "$SIG/scenarios/register_auth.xml" -inf "$W/users.csv"; }
  for server in ${SERVERS:-kamailio openline}; do
    search_max
    read -r p50 p99 cpu us < <(confirm_stats "register_auth_$server")
    echo "$server: clean rate $MED_ACH/s (offered $FOUND_RATE, $NPASS/$RUNS confirmations) p50=${p50}ms p99=${p99}ms cpu=${cpu}% ${us}us/REGISTER" | tee -a "$W/search.txt"
    stop_server
  done
  cat "$W/search.txt"; echo "details: $RESULTS"; exit 0
fi
for i in $(seq "$RUNS"); do
  for server in ${SERVERS:-kamailio openline}; do
    "start_$server"
    run_at "register_auth_$server"
    stop_server
    sleep "$COOLDOWN"
  done
done

read -r kus kpass < <(summary register_auth_kamailio)
read -r ous opass < <(summary register_auth_openline)
echo "register_auth rate=$RATE/s duration=${DURATION}s kamailio_us_per_reg=$kus (passed $kpass) openline_us_per_reg=$ous (passed $opass) openline/kamailio=$(awk -v o="$ous" -v k="$kus" 'BEGIN{printf "%.2f", o/k}')"
echo "details: $RESULTS"
