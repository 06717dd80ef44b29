#!/usr/bin/env bash
# Scale-out (issue #9): REGISTER with digest and calls through one, two and three openline
# nodes sharing one PostgreSQL (Debian's, fsync on, started here like the tests'), every node
# and the database on this one machine. The nodes share its cores, so what is reported is the
# CPU each operation costs all nodes together and the database (process trees from /proc),
# beside the rate achieved.
#   bench/scripts/cluster_rate.sh        # REG_RATE=1000 CALL_RATE=200 DURATION=10 RUNS=3 NODES="1 2 3"
# Registrations: node k takes 1/N of the rate, from its own SIPp and its own users (the
# shared scenario register_auth.xml, users bench1..), so every node writes bindings and every
# other node applies them from the database's notifications.
# Calls: node k has a responder registered through it (bench-uas-k) and a caller that calls
# the responder of node k+1 through node k: with two or three nodes every call crosses two
# nodes (the worst case; with callees placed at random (N-1)/N of calls do). One node calls
# its own responder. Media is not anchored (--media never), as in call_rate.sh.
# The same load generators and scenarios as register_auth.sh and call_rate.sh (shared
# signaling/scenarios); the peer figures for one server are theirs (Kamailio, same run there).
. "$(dirname "$0")/preamble.sh" 1000 cluster
REG_RATE=${REG_RATE:-1000} CALL_RATE=${CALL_RATE:-200} NODES=${NODES:-"1 2 3"}
BIN=${OPENLINE_BIN:-$ROOT/target/release/openline}
PG=$W/pg
chmod 755 "$W" # the database runs as postgres and must reach its directory
URL=$("$ROOT/scripts/test-postgres" start "$PG")
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
# (each step may fail without skipping the rest: the database must stop whatever ended the run)
trap 'for p in "$W"/*.pid; do [ -e "$p" ] && kill "$(cat "$p")" 2>/dev/null || true; done; "$ROOT/scripts/test-postgres" stop "$PG" || true' EXIT
psql_do() { "$PGBIN/psql" -q -h "$PG" -U postgres -d openline -c "$1" >/dev/null; }
NUSERS=$(( REG_RATE * DURATION ))
awk -v n="$NUSERS" 'BEGIN{for(i=1;i<=n;i++) printf "bench%d@127.0.0.1 pwbench%d\n", i, i}' > "$W/users.txt"
for k in 1 2 3; do echo "bench-uas-$k@bench.test pwbench-uas-$k"; done >> "$W/users.txt"
"$BIN" user import "$W/users.txt" --db "$URL" >/dev/null

# start_nodes N DOMAIN: nodes n1..nN on 5070.., each with its pid file. The registrations'
# users are @127.0.0.1 (the scenario's realm); the calls' domain is bench.test, so that their
# caller (caller@127.0.0.1, a stranger then) needs no credentials, as in call_rate.sh.
start_nodes() {
  psql_do "TRUNCATE bindings, messages, deliveries, devices, nodes"
  for k in $(seq "$1"); do
    RUST_LOG=${OPENLINE_LOG:-warn} "$BIN" serve --domain "$2" --listen "udp:127.0.0.1:$((5069 + k))" \
      --db "$URL" --node "n$k" --media never --control "$W/n$k.sock" ${OPENLINE_ARGS:-} >/dev/null 2>"$W/n$k.log" &
    echo $! > "$W/n$k.pid"
  done
  sleep 2
}
stop_nodes() {
  for p in "$W"/n*.pid; do [ -s "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
  for p in "$W"/n*.pid; do [ -s "$p" ] && while kill -0 "$(cat "$p")" 2>/dev/null; do sleep 0.1; done; rm -f "$p"; done
  sleep 1
}
# The CPU ticks of every node and of the database so far: "nodes db".
ticks() {
  local n=0 p
  for p in "$W"/n*.pid; do n=$(( n + $(tree_ticks "$(cat "$p")") )); done
  echo "$n $(tree_ticks "$(head -1 "$PG/data/postmaster.pid")")"
}

# load N TEST -- per-node SIPp arguments (with {k} for the node, {next} for node k+1): runs
# the N load generators at once, each at 1/N of the rate; appends a row to $W/cluster.tsv.
load() {
  local n=$1 test=$2 rate=$3; shift 4
  local per=$(( rate / n )) d=$OUT/$test-n$n-$(date +%H%M%S) pids=() k
  mkdir -p "$d"
  read -r c0 g0 < <(ticks); local t0; t0=$(date +%s.%N)
  for k in $(seq "$n"); do
    local next=$(( k % n + 1 )) args=()
    for a in "$@"; do a=${a//\{k\}/$k}; args+=("${a//\{next\}/$next}"); done
    mkdir -p "$d/$k"
    ( cd "$d/$k" && timeout -k 5 $(( DURATION * 3 + 40 )) sipp "127.0.0.1:$((5069 + k))" "${args[@]}" \
        -i 127.0.0.1 -p $(( 5100 + k )) -m $(( per * DURATION )) -r "$per" -rp 1000 -l $(( per * 5 + 100 )) \
        -nostdin -buff_size 4194304 -timeout $(( DURATION * 3 + 30 )) -trace_stat -stf stat.csv -fd 1 >/dev/null 2>err.txt ) &
    pids+=($!)
  done
  wait "${pids[@]}"
  read -r c1 g1 < <(ticks); local t1; t1=$(date +%s.%N)
  local ok=0 failed=0 retrans=0 s f r x
  for k in $(seq "$n"); do
    read -r s f r x < <(parse_stat "$d/$k/stat.csv"); ok=$((ok + s)); failed=$((failed + f)); retrans=$((retrans + r))
  done
  awk -v t="$test" -v n="$n" -v ok="$ok" -v f="$failed" -v r="$retrans" -v cn=$((c1 - c0)) -v cg=$((g1 - g0)) \
      -v hz="$HZ" -v w="$(echo "$t1 - $t0" | bc -l)" -v want=$(( per * n * DURATION )) 'BEGIN{
    us_n = ok ? 1e6*cn/hz/ok : 0; us_g = ok ? 1e6*cg/hz/ok : 0
    printf "%s\t%d\t%d/%d\t%d\t%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\n", t, n, ok, want, f, r, ok/w, us_n + us_g, us_n, us_g, 100*(cn+cg)/hz/w
  }' | tee -a "$W/cluster.tsv"
}

set +e # from here a failing SIPp run is a result, not a reason to stop
printf 'test\tnodes\tdone/asked\tfailed\tretrans\tper_s\tus_per_op\tus_nodes\tus_db\tcpu_pct\n' | tee "$W/cluster.tsv"
for run in $(seq "$RUNS"); do
  for n in $NODES; do
    start_nodes "$n" 127.0.0.1
    # Each node's users: bench(k-1)*M+1 .. k*M, in register_auth.xml's CSV.
    m=$(( NUSERS / n ))
    for k in $(seq "$n"); do
      awk -v a=$(( (k - 1) * m + 1 )) -v b=$(( k * m )) 'BEGIN{print "SEQUENTIAL"; for(i=a;i<=b;i++) printf "bench%d;pwbench%d\n", i, i}' > "$W/users-$k.csv"
    done
    load "$n" register "$REG_RATE" -- -sf "$SIG/scenarios/register_auth.xml" -inf "$W/users-{k}.csv"
    stop_nodes
    start_nodes "$n" bench.test
    for k in $(seq "$n"); do
      ( cd "$W" && timeout -k 5 $(( DURATION * 3 + 60 )) sipp -sf "$SIG/scenarios/uas_call.xml" -i 127.0.0.1 -p $(( 5120 + k )) \
          -nostdin -buff_size 4194304 -timeout $(( DURATION * 3 + 50 )) >/dev/null 2>&1 ) &
      echo $! > "$W/uas$k.pid"
      ( cd "$W" && timeout -k 5 20 sipp "127.0.0.1:$((5069 + k))" -sf "$ROOT/tests/peers/sipp/register-as.xml" -s "bench-uas-$k" \
          -key domain bench.test -key contact "sip:bench-uas-$k@127.0.0.1:$(( 5120 + k ))" -key pw "pwbench-uas-$k" \
          -m 1 -i 127.0.0.1 -p $(( 5140 + k )) -nostdin >/dev/null 2>&1 ) || die "could not register bench-uas-$k"
    done
    sleep 1
    load "$n" call "$CALL_RATE" -- -sf "$SIG/scenarios/uac_call.xml" -s "bench-uas-{next}" -d 0
    for k in $(seq "$n"); do kill "$(cat "$W/uas$k.pid")" 2>/dev/null; rm -f "$W/uas$k.pid"; done
    pkill -f "sipp -sf $SIG/scenarios/uas_call.xml" 2>/dev/null || true
    stop_nodes
    sleep "$COOLDOWN"
  done
done
echo "medians over $RUNS runs (us_per_op = all nodes + PostgreSQL, CPU per successful operation):"
awk -F'\t' 'NR>1 {k=$1" "$2; v[k]=v[k]" "$7; r[k]=r[k]" "$6; d[k]=d[k]" "$9}
  function med(s,  a,n,i,j,x){n=split(s,a," "); for(i=1;i<=n;i++)for(j=i+1;j<=n;j++)if(a[j]+0<a[i]+0){x=a[i];a[i]=a[j];a[j]=x} return a[int((n+1)/2)]}
  END{for(k in v) printf "%s nodes: %s us/op total (%s us in PostgreSQL), %s/s\n", k, med(v[k]), med(d[k]), med(r[k])}' "$W/cluster.tsv" | sort
echo "details: $W/cluster.tsv $OUT"
