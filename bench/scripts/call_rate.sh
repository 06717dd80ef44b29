#!/usr/bin/env bash
# Calls through the proxy, Openline against Kamailio in the same run: SIPp uac_call.xml ->
# server -> SIPp uas_call.xml (bench/reference/signaling/scenarios: INVITE, 100/180, 200, ACK,
# BYE, 200, record-routed), the same measuring code (shared lib.sh `measure`: the server's
# process-tree CPU from /proc), runs alternating between the two servers.
#   bench/scripts/call_rate.sh                # RATE=200 DURATION=10 RUNS=3: CPU per call
#   SEARCH=1 bench/scripts/call_rate.sh       # each server's highest clean rate (lib.sh search_max)
#   SERVERS=openline ...                      # one of them
#   OPENLINE_LISTEN=udp:0.0.0.0:5070 ...      # Openline on a wildcard, as the README runs it
#                                             # (the arrival address learnt per datagram)
# Kamailio runs its bench config without call authentication (kam.sh noauth: tm, usrloc in
# memory, 2 workers). Openline serves bench.test, where bench-uas is registered; the uac's
# From (caller@127.0.0.1) is then a stranger calling a local user, which needs no credentials,
# just as Kamailio's config asks none. Neither anchors media (Kamailio has no rtpengine here;
# Openline runs with --media never).
. "$(dirname "$0")/preamble.sh" 200 call
BIN=${OPENLINE_BIN:-$ROOT/target/release/openline}
"$BIN" user add bench-uas@bench.test --password pwbench-uas --db "sqlite://$W/users.db" >/dev/null
DB=sqlite://$W/openline.db

start_kamailio() {
  kamailio -f "$SIG/kamailio.cfg" -DD -E -m 1024 -M 16 -n 2 > "$W/kam.log" 2>&1 &
  echo $! > "$W/server.pid"; sleep 1.5
}
start_openline() {
  rm -f "$W"/openline.db*; cp "$W/users.db" "$W/openline.db"
  RUST_LOG=${OPENLINE_LOG:-warn} "$BIN" serve --domain bench.test --listen "${OPENLINE_LISTEN:-udp:127.0.0.1:$PORT}" --db "$DB" --media never ${OPENLINE_ARGS:-} > /dev/null 2> "$W/openline.log" &
  echo $! > "$W/server.pid"; sleep 1
}
register_kamailio() { register_aor bench-uas "sip:bench-uas@$LOCAL_IP:$UAS_PORT"; }
register_openline() { register_openline_uas; }

export TARGET=127.0.0.1:$PORT SERVER_PID_FILE=$W/server.pid
set +e # from here a failing SIPp run is a result (lib.sh's verdict), not a reason to stop
run_at() {
  stop_server; "start_$server"
  local d; d=$OUT/uas-$server-r$1-$(date +%H%M%S); mkdir -p "$d"
  uas_start "$SCEN/uas_call.xml" "$d"
  "register_$server"
  measure "call_$server" "$1" "$UAS_PID" -- -sf "$SCEN/uac_call.xml" -s bench-uas -d 0
  uas_stop
}
if [ "$SEARCH" = 1 ]; then
  for server in ${SERVERS:-kamailio openline}; do
    search_max
    read -r p50 p99 cpu us < <(confirm_stats "call_$server")
    echo "$server: clean rate $MED_ACH calls/s (offered $FOUND_RATE, $NPASS/$RUNS confirmations) invite-200 p50=${p50}ms p99=${p99}ms cpu=${cpu}% ${us}us/call" | tee -a "$W/search.txt"
    stop_server
  done
  cat "$W/search.txt"; echo "details: $RESULTS"; exit 0
fi
for i in $(seq "$RUNS"); do
  for server in ${SERVERS:-kamailio openline}; do
    run_at "$RATE"
    stop_server
  done
done
read -r kus kpass < <(summary call_kamailio)
read -r ous opass < <(summary call_openline)
echo "call rate=$RATE/s duration=${DURATION}s kamailio_us_per_call=$kus (passed $kpass) openline_us_per_call=$ous (passed $opass) openline/kamailio=$(awk -v o="$ous" -v k="$kus" 'BEGIN{printf "%.2f", (k>0? o/k : 0)}')"
echo "details: $RESULTS"
