#!/usr/bin/env bash
# Presence, Openline against Kamailio in the same run, one load generator for both
# (bench/src/bin/presence_load): 100 watchers hold 10,000 subscriptions to 1,000 presentities
# (10 watchers each) while the presentities' devices register and unregister (digest, round
# robin, RATE changes a second for DURATION seconds, twice: alone, then with every subscription
# held). The server's process-tree CPU above what the REGISTERs cost alone, divided by the
# NOTIFYs it sent, is its CPU per NOTIFY. Runs alternate between the servers.
#   bench/scripts/presence_rate.sh          # RATE=375 DURATION=10 RUNS=3
#   SERVERS=openline|kamailio
# Kamailio: bench/kamailio/presence.cfg (pua_usrloc publishes each binding change to its own
# presence module; everything in memory). Openline: its own presence agent, bindings in SQLite
# (WAL, synchronous=FULL, group commit), as it runs in production.
# Both check that each watcher's last NOTIFY matches its presentity's last REGISTER.
. "$(dirname "$0")/preamble.sh" 375 presence
cargo build --release -q -p openline-bench --bin presence_load --manifest-path "$ROOT/Cargo.toml"
LOAD=$ROOT/target/release/presence_load
BIN=${OPENLINE_BIN:-$ROOT/target/release/openline}
"$ROOT/bench/scripts/install-bench-deps" >/dev/null
{ for i in $(seq 0 999); do echo "p$i@bench.test s3cret"; done
  for i in $(seq 0 99); do echo "w$i@bench.test s3cret"; done; } > "$W/users.txt"
"$BIN" user import "$W/users.txt" --db "sqlite://$W/users.db" >/dev/null
sed "s|DBURL|sqlite://$W/kamailio.db|" "$ROOT/bench/kamailio/presence.cfg" > "$W/presence.cfg"

start_kamailio() {
  rm -f "$W"/kamailio.db*
  cat /usr/share/kamailio/db_sqlite/standard-create.sql /usr/share/kamailio/db_sqlite/presence-create.sql \
    | sqlite3 "$W/kamailio.db"
  kamailio -f "$W/presence.cfg" -DD -E -m 1024 -M 16 -n 2 > "$W/kam.log" 2>&1 &
  echo $! > "$W/server.pid"; sleep 1.5
}
start_openline() {
  rm -f "$W"/openline.db*; cp "$W/users.db" "$W/openline.db"
  RUST_LOG=${OPENLINE_LOG:-warn} "$BIN" serve --domain bench.test --listen udp:127.0.0.1:$PORT \
    --db "sqlite://$W/openline.db" --max-subscriptions 1000 ${OPENLINE_ARGS:-} > /dev/null 2> "$W/openline.log" &
  echo $! > "$W/server.pid"; sleep 1
}

mkdir -p "$OUT"
for i in $(seq "$RUNS"); do
  for server in ${SERVERS:-kamailio openline}; do
    stop_server; "start_$server"
    line=$(timeout -k 5 900 "$LOAD" --server "127.0.0.1:$PORT" --pid "$(cat "$W/server.pid")" \
      --rate "$RATE" --seconds "$DURATION" --ticks "$(getconf CLK_TCK)" 2>>"$W/load.err") || line="failed"
    echo "$server $line" | tee -a "$OUT/presence.txt"
    stop_server
    sleep "$COOLDOWN"
  done
done

# The median of KEY over SERVER's runs.
median() {
  grep "^$1 " "$OUT/presence.txt" | tr ' ' '\n' | sed -n "s/^$2=//p" | sort -g \
    | awk '{v[NR]=$1} END{if(NR) print v[int((NR+1)/2)]; else print 0}'
}
for key in us_per_notify us_per_notify_total us_per_subscription us_per_change_alone; do
  k=$(median kamailio "$key"); o=$(median openline "$key")
  echo "presence $key kamailio=$k openline=$o kamailio/openline=$(awk -v o="$o" -v k="$k" 'BEGIN{printf "%.2f", (o>0? k/o : 0)}')" \
    | tee -a "$OUT/summary.txt"
done
echo "details: $OUT/presence.txt"
