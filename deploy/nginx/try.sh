#!/usr/bin/env bash
# Runs two `serve` instances and nginx with captcha-ocr.conf on free loopback ports, then
# COMMAND with CAPTCHA_URL (nginx's address) and CAPTCHA_INSTANCES (the instances' addresses,
# space separated) and CAPTCHA_PIDS (their process ids) in its environment; stops them all afterwards. Exit status: COMMAND's, or 77
# where nginx is not installed (apt install nginx-light).
#
#   deploy/nginx/try.sh BIN MODEL THREADS_PER_INSTANCE COMMAND [ARGS...]
set -euo pipefail
bin=$1 model=$2 threads=$3
shift 3
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx" ] || { echo "try.sh: nginx is not installed (apt install nginx-light)" >&2; exit 77; }
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
chmod 755 "$work"  # nginx's workers (user nobody when started as root) write their temporary files here
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {  # URL
  for _ in $(seq 100); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "try.sh: nothing answers $1" >&2
  return 1
}

front=$(free_port) one=$(free_port) two=$(free_port)
for port in "$one" "$two"; do
  "$bin" serve --model "general=$model" --port "$port" --threads "$threads" --max-batch 64 2>>"$work/serve.log" &
  pids+=($!)
done
sed -e "s/127.0.0.1:8000/127.0.0.1:$front/" -e "s/127.0.0.1:8001/127.0.0.1:$one/" -e "s/127.0.0.1:8002/127.0.0.1:$two/" \
  "$here/captcha-ocr.conf" > "$work/site.conf"
cat > "$work/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/body;
  proxy_temp_path $work/proxy;
  fastcgi_temp_path $work/fastcgi;
  uwsgi_temp_path $work/uwsgi;
  scgi_temp_path $work/scgi;
  include $work/site.conf;
}
CONF
"$nginx" -p "$work" -c "$work/nginx.conf" -g "daemon off;" 2>>"$work/error.log" &
pids+=($!)
wait_for "http://127.0.0.1:$one/health" && wait_for "http://127.0.0.1:$two/health" && wait_for "http://127.0.0.1:$front/health" ||
  { cat "$work/serve.log" "$work/error.log" >&2; exit 1; }

status=0
CAPTCHA_PIDS="${pids[0]} ${pids[1]}" CAPTCHA_URL="http://127.0.0.1:$front" CAPTCHA_INSTANCES="http://127.0.0.1:$one http://127.0.0.1:$two" "$@" || status=$?
exit "$status"
