#!/usr/bin/env bash
# The canary demo: three SSH hosts (test/lab) behind a local nginx (started here, stopped by its pid).
# The fleet runs v1.0.0; a bad canary (v3.0.0-errors: 5xx on 20 % of requests) is judged by its metrics
# and aborted (traffic back to stable, h1 rolled back); then a good one (v3.2.0) goes through 10 % and
# 50 % of the requests, passes its confirm_promotion gate and is promoted. The lab is torn down at the end
# (FRAISIER_KEEP_LAB=1 keeps it). Run with `npm run demo:canary`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
lab="${FRAISIER_LAB_DIR:-/tmp/fraisier-lab}"
net="${FRAISIER_LAB_NET:-200}"
demo="${FRAISIER_DEMO_DIR:-/tmp/fraisier-demo-canary}"
fraisier() { echo; echo "\$ fraisier $*"; node "$root/bin/fraisier.js" "$@"; }

[ -f "$root/dist/index.js" ] || (cd "$root" && npm run build >/dev/null)
echo "== Bringing up the lab: 3 SSH hosts (h1..h3) in network namespaces, each with supervisor"
bash "$root/test/lab/lab.sh" up 3
nginx_pid=""
cleanup() {
  if [ -n "$nginx_pid" ]; then kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
  [ -n "${FRAISIER_KEEP_LAB:-}" ] || bash "$root/test/lab/lab.sh" down >/dev/null 2>&1 || true
}
trap cleanup EXIT
for h in h1 h2 h3; do bash "$root/test/lab/lab.sh" ssh "$h" 'supervisorctl stop app >/dev/null 2>&1; rm -rf /srv/app/* /srv/app/.[!.]*; true' >/dev/null; done

rm -rf "$demo"; mkdir -p "$demo/nginx/tmp"; cd "$demo"
# nginx on 127.0.0.1 and a free port, in front of the hosts' :8000; fraisier rewrites its upstream file.
port="$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")"
a1="10.$net.0.11:8000" a2="10.$net.0.12:8000" a3="10.$net.0.13:8000"
printf 'upstream app {\n  server %s;\n  server %s;\n  server %s;\n}\n' "$a1" "$a2" "$a3" > nginx/upstream.conf
cat > nginx/nginx.conf <<CONF
worker_processes 1;
pid $demo/nginx/nginx.pid;
error_log $demo/nginx/error.log notice;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $demo/nginx/tmp/body;
  proxy_temp_path $demo/nginx/tmp/proxy;
  fastcgi_temp_path $demo/nginx/tmp/fastcgi;
  uwsgi_temp_path $demo/nginx/tmp/uwsgi;
  scgi_temp_path $demo/nginx/tmp/scgi;
  include $demo/nginx/upstream.conf;
  server {
    listen 127.0.0.1:$port;
    location / { proxy_pass http://app; add_header X-Upstream \$upstream_addr always; proxy_connect_timeout 2s; }
  }
}
CONF
nginx -p "$demo/nginx" -c "$demo/nginx/nginx.conf" -g 'daemon off;' &
nginx_pid=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break || sleep 0.1; done
echo "== nginx (pid $nginx_pid) on 127.0.0.1:$port in front of h1 $a1, h2 $a2, h3 $a3"

config() { # $1: the strategy block
  cat > fraises.yaml <<YAML
ssh:
  config: $lab/ssh_config
fraises:
  app:
    git_repo: $lab/app.git
    branch: main
    app_path: /srv/app
    environments:
      production:
        provider: bare_metal
        instances: [h1, h2, h3]
        supervisor_program: app
$1
        health_check:
          url: http://localhost:8000/health
          expect: ok
          timeout: 2
          retries: 8
          retry_delay: 0.25
        load_balancer:
          type: nginx
          upstream: app
          file: $demo/nginx/upstream.conf
          nginx_args: [-p, $demo/nginx, -c, $demo/nginx/nginx.conf]
          servers: { h1: "$a1", h2: "$a2", h3: "$a3" }
YAML
}

echo; echo "== The fleet starts on v1.0.0 (a plain rolling deployment)"
config "        deployment_strategy: rolling"
fraisier deploy app production --version v1.0.0

config "        deployment_strategy: canary
        canary_config:
          canary_instances: 1          # h1 first
          canary_duration: 3s
          canary_error_threshold: 5    # percent of requests
          metrics_to_monitor: [error_rate]
          analysis: { interval: 1s, min_samples: 10, inconclusive_limit: 4 }
          gates:
            confirm_promotion: echo \"smoke tests of \$FRAISIER_VERSION pass at \$FRAISIER_WEIGHT%\"
        traffic_shifting:
          enabled: true
          schedule:
            - { percentage: 10, duration: 3s }
            - { percentage: 50, duration: 3s }
            - { percentage: 100 }
        metrics_sources:
          probe: { path: /, rate: 20 }   # fraisier's own requests to each host, no monitoring system needed"
echo; echo "== $demo/fraises.yaml now uses the canary strategy:"; cat fraises.yaml

echo; echo "== A bad canary: v3.0.0-errors answers 500 on 20 % of requests. The probe sees it; traffic goes back to h2 and h3, h1 back to v1.0.0"
if fraisier deploy app production --version v3.0.0-errors; then echo "unexpected: the bad canary was promoted" >&2; exit 1; else echo "(exit status $?: the canary was aborted and rolled back)"; fi
fraisier status app production
echo; echo "== What each host serves now:"
for h in h1 h2 h3; do printf '%s: ' "$h"; bash "$root/test/lab/lab.sh" ssh "$h" 'curl -s http://127.0.0.1:8000/'; done

echo; echo "== A good canary: v3.2.0 through 10 % then 50 % of the requests, the gate, then the rest of the fleet"
fraisier deploy app production --version v3.2.0
fraisier status app production
fraisier history --fraise app --env production
echo; echo "== Ten requests through nginx (127.0.0.1:$port), all on v3.2.0:"
for _ in $(seq 10); do curl -s "http://127.0.0.1:$port/"; done | sort | uniq -c
