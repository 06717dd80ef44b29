# shellcheck shell=bash
# Shared by the Openline-against-peer bench scripts here; sourced after shared lib.sh, with W set
# to the run's work folder (the server's PID is in $W/server.pid).

# Stops the server started for a run and waits until it is gone.
stop_server() {
  [ -s "$W/server.pid" ] || return 0
  local p; p=$(cat "$W/server.pid"); kill "$p" 2>/dev/null || true
  while kill -0 "$p" 2>/dev/null; do sleep 0.1; done
  rm -f "$W/server.pid"; sleep 1
}

# summary TEST -> "median-server-us/op passed/runs" from $RESULTS
summary() {
  awk -F'\t' -v t="$1" '$2==t {u[++n]=$16; if($21=="pass") p++}
    function med(a,n,  i,j,x){for(i=1;i<=n;i++)for(j=i+1;j<=n;j++)if(a[j]<a[i]){x=a[i];a[i]=a[j];a[j]=x} return a[int((n+1)/2)]}
    END{printf "%s %d/%d\n", med(u,n), p, n}' "$RESULTS"
}

# Registers bench-uas@bench.test (password pwbench-uas) at Openline ($TARGET) with the SIPp
# responder's address as its contact, answering the digest challenge.
register_openline_uas() {
  ( cd "$W" && timeout -k 5 20 sipp "$TARGET" -sf "$ROOT/tests/peers/sipp/register-as.xml" -s bench-uas \
      -key domain bench.test -key contact "sip:bench-uas@$LOCAL_IP:$UAS_PORT" -key pw pwbench-uas \
      -m 1 -i "$LOCAL_IP" -p "$((UAC_PORT + 1))" -nostdin >/dev/null 2>"$W/reg.err" ) \
    || { cat "$W/reg.err" >&2; die "could not register bench-uas at openline"; }
}
