#!/usr/bin/env bash
# SIP MESSAGE, Openline against Kamailio in the same run, the same SIPp scenarios (bench/reference/
# signaling/scenarios: uac_message.xml, uas_message.xml) and the same measuring code (shared
# lib.sh `measure`: the server's process-tree CPU from /proc), runs alternating between them.
#   bench/scripts/message_rate.sh               # RATE=1000 DURATION=10 RUNS=3, both modes
#   MODES=online|offline, SEARCH=1 (each server's highest clean rate), SERVERS=openline|kamailio
# online:  relayed to a registered SIPp responder that answers 200 (Kamailio: tm, usrloc in
#          memory, its bench config; Openline: the text fan-out to the user's one device).
# offline: to a user with no device, stored and answered 202 only once durable (Kamailio: msilo
#          on SQLite, bench/kamailio/msilo.cfg, one worker; Openline: its mailbox on SQLite,
#          WAL, synchronous=FULL, group commit).
# The uac's From (sender@127.0.0.1) is a stranger writing to a local user: no credentials on
# either server, as Kamailio's bench config asks none.
. "$(dirname "$0")/preamble.sh" 1000 message
command -v sqlite3 >/dev/null && [ -e /usr/lib/x86_64-linux-gnu/kamailio/modules/db_sqlite.so ] \
  || DEBIAN_FRONTEND=noninteractive apt-get install -y -q kamailio-sqlite-modules sqlite3 >/dev/null
BIN=${OPENLINE_BIN:-$ROOT/target/release/openline}
for u in bench-uas away; do
  "$BIN" user add "$u@bench.test" --password "pw$u" --db "sqlite://$W/users.db" >/dev/null
done
sed "s|DBURL|sqlite://$W/msilo.db|" "$ROOT/bench/kamailio/msilo.cfg" > "$W/msilo.cfg"

start_kamailio() {
  local cfg=$SIG/kamailio.cfg workers=2
  if [ "$mode" = offline ]; then
    # One worker: Kamailio 5.6's db_sqlite sets no busy timeout, so two workers writing the
    # same file fail each other's commits ("database is locked": half the MESSAGEs got 503).
    workers=1
    rm -f "$W"/msilo.db*
    cat /usr/share/kamailio/db_sqlite/standard-create.sql /usr/share/kamailio/db_sqlite/msilo-create.sql \
      | sqlite3 "$W/msilo.db"
    cfg=$W/msilo.cfg
  fi
  kamailio -f "$cfg" -DD -E -m 1024 -M 16 -n "$workers" > "$W/kam.log" 2>&1 &
  echo $! > "$W/server.pid"; sleep 1.5
}
start_openline() {
  rm -f "$W"/openline.db*; cp "$W/users.db" "$W/openline.db"
  RUST_LOG=${OPENLINE_LOG:-warn} "$BIN" serve --domain bench.test --listen udp:127.0.0.1:$PORT \
    --db "sqlite://$W/openline.db" --message-quota 1000000000 ${OPENLINE_ARGS:-} > /dev/null 2> "$W/openline.log" &
  echo $! > "$W/server.pid"; sleep 1
}
register_kamailio() { register_aor bench-uas "sip:bench-uas@$LOCAL_IP:$UAS_PORT"; }
register_openline() { register_openline_uas; }

export TARGET=127.0.0.1:$PORT SERVER_PID_FILE=$W/server.pid
set +e # from here a failing SIPp run is a result (lib.sh's verdict), not a reason to stop
run_at() {
  stop_server; "start_$server"
  local test=message_${mode}_$server
  if [ "$mode" = online ]; then
    local d; d=$OUT/uas-$server-r$1-$(date +%H%M%S); mkdir -p "$d"
    uas_start "$SCEN/uas_message.xml" "$d"
    "register_$server"
    measure "$test" "$1" "$UAS_PID" -- -sf "$SCEN/uac_message.xml" -s bench-uas
    uas_stop
  else
    measure "$test" "$1" "" -- -sf "$SCEN/uac_message.xml" -s away
  fi
}
for mode in ${MODES:-online offline}; do
  if [ "$SEARCH" = 1 ]; then
    for server in ${SERVERS:-kamailio openline}; do
      search_max
      read -r p50 p99 cpu us < <(confirm_stats "message_${mode}_$server")
      echo "$mode $server: clean rate $MED_ACH/s (offered $FOUND_RATE, $NPASS/$RUNS confirmations) p50=${p50}ms p99=${p99}ms cpu=${cpu}% ${us}us/message" | tee -a "$W/search.txt"
      stop_server
    done
    continue
  fi
  for i in $(seq "$RUNS"); do
    for server in ${SERVERS:-kamailio openline}; do
      run_at "$RATE"
      stop_server
    done
  done
  read -r kus kpass < <(summary "message_${mode}_kamailio")
  read -r ous opass < <(summary "message_${mode}_openline")
  echo "message $mode rate=$RATE/s duration=${DURATION}s kamailio_us_per_msg=$kus (passed $kpass) openline_us_per_msg=$ous (passed $opass) openline/kamailio=$(awk -v o="$ous" -v k="$kus" 'BEGIN{printf "%.2f", (k>0? o/k : 0)}')" | tee -a "$W/summary.txt"
done
[ -s "$W/search.txt" ] && cat "$W/search.txt"
[ -s "$W/summary.txt" ] && cat "$W/summary.txt"
echo "details: $RESULTS"
