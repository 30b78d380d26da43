#!/usr/bin/env bash
# The demo: brings up three SSH hosts (test/lab), deploys the sample app with a rolling strategy and
# health checks, deploys a broken version and shows the automatic rollback, then the history.
# The lab is torn down at the end (FRAISIER_KEEP_LAB=1 keeps it).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
lab="${FRAISIER_LAB_DIR:-/tmp/fraisier-lab}"
demo="${FRAISIER_DEMO_DIR:-/tmp/fraisier-demo}"
fraisier() { echo; echo "\$ fraisier $*"; node "$root/bin/fraisier.js" "$@"; }

[ -f "$root/dist/index.js" ] || (cd "$root" && npm run build >/dev/null)
echo "== Bringing up the lab: 3 SSH hosts (h1..h3) in network namespaces, each with supervisor"
bash "$root/test/lab/lab.sh" up 3
[ -n "${FRAISIER_KEEP_LAB:-}" ] || trap 'bash "$root/test/lab/lab.sh" down >/dev/null 2>&1 || true' EXIT
for h in h1 h2 h3; do bash "$root/test/lab/lab.sh" ssh "$h" 'supervisorctl stop app >/dev/null 2>&1; rm -rf /srv/app/* /srv/app/.[!.]*; true' >/dev/null; done

rm -rf "$demo"; mkdir -p "$demo"; cd "$demo"
cat > fraises.yaml <<YAML
ssh:
  config: $lab/ssh_config          # the lab's hosts; your own ~/.ssh/config by default
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
        deployment_strategy: rolling
        rolling_config:
          batch_size: 1
          wait_between_batches: 0
        health_check:
          url: http://localhost:8000/health   # the host's own localhost, reached over SSH
          expect: ok
          timeout: 2
          retries: 8
          retry_delay: 0.25
YAML
echo "== $demo/fraises.yaml"; cat fraises.yaml

fraisier deploy app production --version v1.0.0
fraisier deploy app production --version v1.1.0
echo; echo "== Now a broken release (its /health answers 500): h1 fails, is rolled back; h2 and h3 are never touched"
fraisier deploy app production --version v2.0.0-broken || echo "(exit status $?: the deployment failed and was rolled back)"
fraisier status app production
fraisier history
fraisier stats
echo; echo "== What each host serves now:"
for h in h1 h2 h3; do printf '%s: ' "$h"; bash "$root/test/lab/lab.sh" ssh "$h" 'curl -s http://127.0.0.1:8000/'; done
