# shellcheck shell=bash
# Sourced by the relay benchmarks (media_rate.sh, webrtc_rate.sh) with ROOT and MEDIA set:
# starts openline-media (ng on 127.0.0.1:22300) and rtpengine (ng on 127.0.0.1:22222) pinned
# to SERVER_CPU (default 1), stops both on exit, and fills NG and PID per server. W is the
# run's work folder, made here under /tmp with the prefix $1.
W=$(mktemp -d "/tmp/$1.XXXXXX")
trap 'kill $(cat "$W/openline.pid" 2>/dev/null) 2>/dev/null; "$MEDIA/servers.sh" stop rtpengine >/dev/null' EXIT
taskset -c "${SERVER_CPU:-1}" "$ROOT/target/release/openline-media" --control udp:127.0.0.1:22300 \
  --turn udp:127.0.0.1:0 --listen 127.0.0.1 --ports 20000-29999 > "$W/openline.out" 2>&1 &
echo $! > "$W/openline.pid"
"$MEDIA/servers.sh" start rtpengine > "$W/rtpengine.start"
sleep 1
# shellcheck disable=SC2034 # read by the script that sources this
declare -A NG=([openline]=127.0.0.1:22300 [rtpengine]=127.0.0.1:22222)
# shellcheck disable=SC2034
declare -A PID=([openline]=$(cat "$W/openline.pid") [rtpengine]=$(cat /tmp/media-bench/rtpengine.pid))
