#!/usr/bin/env bash
# Everything a fresh Debian 12 machine needs to run Fraisier's demo and tests (as root):
# the lab's Debian packages (sshd, supervisor, git, curl, iproute2, nginx, HAProxy + socat, PostgreSQL, wrk, shellcheck for the embedded scripts, Prometheus for the canary analysis tests), then `npm ci`, which also builds dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

packages=(openssh-server openssh-client supervisor git curl iproute2 tar util-linux procps nginx haproxy socat postgresql wrk shellcheck prometheus)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  # Keep package scripts from starting system services: the lab starts its own, by pid.
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; trap 'rm -f /usr/sbin/policy-rc.d' EXIT; fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
elif [ ! -f dist/index.js ]; then
  npm run build
fi
