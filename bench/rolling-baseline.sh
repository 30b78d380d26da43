#!/bin/bash
# Baseline for bench/rolling.ts: the same rolling deploy as Fraisier's bare_metal + rolling, as a plain
# bash script over the OpenSSH client (one fresh ssh login per call, no multiplexing).
#
#   bench/rolling-baseline.sh SSH_CONFIG REPO VERSION BATCH HOST...
#
# Per host (hosts of one batch in parallel with & + wait, batches one after the other):
#   1. one ssh call: if /srv/app/releases/VERSION exists skip to 2 (same rule as Fraisier's prepare,
#      which skips when the release is already there); else mirror-clone or fetch the repo into
#      /srv/app/repo and `git archive | tar -x` into a temp dir moved to releases/VERSION;
#      then switch `current` (ln -sfn + mv -T) and `supervisorctl restart app`.
#   2. health: `curl -fsS localhost:8000/health` over ssh (a new login per poll) until it succeeds,
#      sleep 0.2 between polls, at most 20 polls.
# Exits non-zero if any host fails (a real script would roll back; the benchmark never needs to).
set -uo pipefail
CFG=$1 REPO=$2 V=$3 BATCH=$4
shift 4
HOSTS=("$@")
APP=/srv/app
SSH=(ssh -F "$CFG" -o BatchMode=yes -o ConnectTimeout=10)

deploy_host() {
  local h=$1 i
  "${SSH[@]}" "$h" "set -e
app=$APP; v=$V; repo=$REPO
rel=\$app/releases/\$v
if [ ! -d \"\$rel\" ]; then
  mkdir -p \"\$app/releases\"
  if [ -d \"\$app/repo\" ]; then
    git -C \"\$app/repo\" fetch --quiet --prune --force --tags origin '+refs/heads/*:refs/heads/*'
  else
    git clone --quiet --mirror \"\$repo\" \"\$app/repo\"
  fi
  tmp=\$app/releases/.tmp-\$v-\$\$
  rm -rf \"\$tmp\"; mkdir -p \"\$tmp\"
  git -C \"\$app/repo\" archive \"\$v^{commit}\" | tar -x -C \"\$tmp\"
  touch \"\$tmp/.fraisier-release\"
  mv -T \"\$tmp\" \"\$rel\"
fi
ln -sfn \"releases/\$v\" \"\$app/.current.tmp\"
mv -T \"\$app/.current.tmp\" \"\$app/current\"
supervisorctl restart app >/dev/null" || { echo "$h: deploy failed" >&2; return 1; }
  for ((i = 1; i <= 20; i++)); do
    if "${SSH[@]}" "$h" 'curl -fsS localhost:8000/health' >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "$h: health check failed" >&2
  return 1
}

rc=0
for ((b = 0; b < ${#HOSTS[@]}; b += BATCH)); do
  pids=()
  for h in "${HOSTS[@]:b:BATCH}"; do deploy_host "$h" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  [ "$rc" -eq 0 ] || exit 1
done
