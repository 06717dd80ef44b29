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
