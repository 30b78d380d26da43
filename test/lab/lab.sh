#!/bin/bash
# Fraisier end-to-end test lab: N fake "bare-metal" hosts on one machine.
#
#   lab.sh up [N]     bring up N hosts (default 3, 1..50); no-op if already up with >= N hosts
#   lab.sh down       stop every process the lab started (by pid), delete namespaces, veths, bridge
#   lab.sh status     show the hosts; exit 0 iff the lab is up and every sshd answers
#   lab.sh ssh hN ... convenience: ssh -F $LAB/ssh_config hN ...
#
# Each host is a network namespace frlab-h$i (10.200.0.$((10+i))) on bridge frlab-br0 (10.200.0.1)
# (FRAISIER_LAB_NET=N: frlabN-h$i, 10.N.0.$((10+i)), frlabN-br0),
# with sshd + supervisord running in a private mount/UTS namespace where /srv, /root, /etc/supervisor
# and /run are the host's own. Must run as root. See README.md next to this file.
set -euo pipefail

LAB="${FRAISIER_LAB_DIR:-/tmp/fraisier-lab}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# FRAISIER_LAB_NET (default 200) picks the subnet 10.$LAB_NET.0.0/24, so a second lab can run next to the
# default one (use another FRAISIER_LAB_DIR too). Names stay frlab-* for 200, frlab$LAB_NET-* otherwise.
LAB_NET="${FRAISIER_LAB_NET:-200}"
[[ "$LAB_NET" =~ ^[0-9]+$ ]] && [ "$LAB_NET" -ge 1 ] && [ "$LAB_NET" -le 254 ] || { printf 'lab: error: FRAISIER_LAB_NET must be 1..254: %s\n' "$LAB_NET" >&2; exit 1; }
if [ "$LAB_NET" = 200 ]; then PFX=frlab; else PFX="frlab$LAB_NET"; fi
BR="$PFX-br0"     # bridge in the root namespace
NSP="$PFX-h"      # host namespaces: $NSP$i
VETH="$PFX-v"     # root-side veths: $VETH$i
NET="10.$LAB_NET.0"
MAX_HOSTS=50
UP_TIMEOUT="${FRAISIER_LAB_UP_TIMEOUT:-30}"   # seconds to wait for every sshd

log() { printf 'lab: %s\n' "$*" >&2; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces, mounts)"
case "$LAB" in /*) ;; *) die "FRAISIER_LAB_DIR must be an absolute path: $LAB" ;; esac
case "$LAB" in *[[:space:]\'\"\\]*) die "FRAISIER_LAB_DIR must not contain spaces or quotes: $LAB" ;; esac
[ "$LAB" != / ] || die "FRAISIER_LAB_DIR must not be /"

addr_of() { echo "$NET.$((10 + $1))"; }

now_ms() { date +%s%3N; }
T0=$(now_ms)
# FRAISIER_LAB_TIMING=1 prints the time of each phase of `up` to stderr
phase() { if [ -n "${FRAISIER_LAB_TIMING:-}" ]; then log "$(($(now_ms) - T0)) ms: $*"; fi; }

tcp_open() { timeout 3 bash -c ": </dev/tcp/$1/22" 2>/dev/null; }

lab_host_count() {
  # number of hosts recorded in env.json (0 if none)
  [ -f "$LAB/env.json" ] || { echo 0; return; }
  grep -o '"name":"h[0-9]*"' "$LAB/env.json" | wc -l
}

# alive: the process exists and is not a zombie (PID 1 on some VMs reaps orphans only every second or so)
alive() {
  [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ] || return 1
  local st
  st=$(cut -d')' -f2 "/proc/$1/stat" 2>/dev/null | cut -d' ' -f2) || return 1
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# ---------------------------------------------------------------- status
lab_is_up() {
  # $1: minimum host count. Quiet check: env.json, namespaces, recorded pids alive, sshd answering.
  local want="$1" n i pid
  n=$(lab_host_count)
  [ "$n" -ge 1 ] && [ "$n" -ge "$want" ] || return 1
  for ((i = 1; i <= n; i++)); do
    [ -e "/run/netns/$NSP$i" ] || return 1
    [ -f "$LAB/hosts/h$i/pids" ] || return 1
    while read -r _ pid; do alive "$pid" || return 1; done <"$LAB/hosts/h$i/pids"
    tcp_open "$(addr_of "$i")" || return 1
  done
  # no stray extra hosts from a bigger earlier lab
  [ ! -e "/run/netns/$NSP$((n + 1))" ] || return 1
}

cmd_status() {
  local n i ok=0 ns sshd sup port
  n=$(lab_host_count)
  echo "lab dir: $LAB"
  if [ "$n" -eq 0 ]; then
    echo "no lab (no env.json)"
    if ip netns list 2>/dev/null | grep -q "^$NSP"; then echo "stray namespaces: $(ip netns list | grep -o "^$NSP[0-9]*" | tr '\n' ' ')"; fi
    return 1
  fi
  printf '%-5s %-13s %-6s %-18s %-18s %s\n' host address netns sshd supervisord port22
  for ((i = 1; i <= n; i++)); do
    ns=no; sshd=-; sup=-; port=closed
    [ -e "/run/netns/$NSP$i" ] && ns=yes
    if [ -f "$LAB/hosts/h$i/pids" ]; then
      while read -r what pid; do
        local st; if alive "$pid"; then st="$pid"; else st="$pid(dead)"; fi
        case "$what" in sshd) sshd=$st ;; supervisord) sup=$st ;; esac
      done <"$LAB/hosts/h$i/pids"
    fi
    tcp_open "$(addr_of "$i")" && port=open
    printf '%-5s %-13s %-6s %-18s %-18s %s\n' "h$i" "$(addr_of "$i")" "$ns" "$sshd" "$sup" "$port"
    if [ "$ns" = no ] || [ "$port" = closed ] || [[ "$sshd" == *dead* || "$sshd" == - ]] || [[ "$sup" == *dead* || "$sup" == - ]]; then ok=1; fi
  done
  if [ "$ok" -eq 0 ]; then echo "lab is up ($n hosts)"; else echo "lab is NOT healthy"; fi
  return "$ok"
}

# ---------------------------------------------------------------- down
kill_and_wait() {
  # kill -TERM the given pids, wait up to $1 seconds, then -KILL the survivors
  local secs="$1"; shift
  local pids=() p deadline
  for p in "$@"; do alive "$p" && pids+=("$p"); done
  [ "${#pids[@]}" -gt 0 ] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  deadline=$(($(now_ms) + secs * 1000))
  while :; do
    local left=()
    for p in "${pids[@]}"; do alive "$p" && left+=("$p"); done
    [ "${#left[@]}" -gt 0 ] || return 0
    if [ "$(now_ms)" -ge "$deadline" ]; then
      log "killing survivors with SIGKILL: ${left[*]}"
      kill -KILL "${left[@]}" 2>/dev/null || true
      sleep 0.1
      return 0
    fi
    sleep 0.05
  done
}

cmd_down() {
  local recorded=() ns netns_list p i
  netns_list=$(ip netns list 2>/dev/null | grep -o "^$NSP[0-9]*" || true)

  # 1. pids the lab recorded (supervisord first so it stops its programs gracefully, then sshd)
  if [ -d "$LAB/hosts" ]; then
    for f in "$LAB"/hosts/h*/pids; do
      [ -f "$f" ] || continue
      while read -r what p; do [ "$what" = supervisord ] && recorded+=("$p"); done <"$f"
    done
    kill_and_wait 6 "${recorded[@]+"${recorded[@]}"}"
    recorded=()
    for f in "$LAB"/hosts/h*/pids "$LAB"/hosts/h*/launcher.pid; do
      [ -f "$f" ] || continue
      while read -r a b; do p="${b:-$a}"; recorded+=("$p"); done <"$f"
    done
    kill_and_wait 3 "${recorded[@]+"${recorded[@]}"}"
  fi

  # 2. anything still running inside a lab namespace was started from the lab (ssh sessions, apps
  #    launched by tests): stop those pids too, so no namespace is kept alive by a leftover process.
  local stray=()
  for ns in $netns_list; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do stray+=("$p"); done
  done
  if [ "${#stray[@]}" -gt 0 ]; then
    log "stopping leftover processes in lab namespaces: ${stray[*]}"
    kill_and_wait 3 "${stray[@]}"
  fi

  # 3. namespaces, veths, bridge
  for ns in $netns_list; do
    ip netns delete "$ns" 2>/dev/null || log "could not delete netns $ns"
  done
  for l in $(ip -o link show 2>/dev/null | grep -o "$VETH[0-9]*" | sort -u); do
    ip link delete "$l" 2>/dev/null || true
  done
  if ip link show "$BR" >/dev/null 2>&1; then ip link delete "$BR" || log "could not delete $BR"; fi

  rm -f "$LAB/env.json" "$LAB"/hosts/h*/pids "$LAB"/hosts/h*/launcher.pid 2>/dev/null || true
}

# ---------------------------------------------------------------- up
# heredoc_out: prints its stdin (a heredoc) with bash builtins only. `up` writes a few files per host, and
# at 48 hosts on a loaded machine every `cat`/`cp`/`chmod` process counts (see FRAISIER_LAB_TIMING).
heredoc_out() {
  local text
  IFS= read -r -d '' text || true
  printf '%s' "$text"
}

# write_host_files I PUBKEY: one host's files (its directories exist already, made for every host at once)
write_host_files() {
  local i="$1" H="$LAB/hosts/h$1" a="$NET.$((10 + $1))"
  ssh-keygen -q -t ed25519 -N '' -C "h$i" -f "$H/ssh_host_ed25519_key" </dev/null >/dev/null

  heredoc_out >"$H/sshd_config" <<EOF
# fraisier lab host h$i
ListenAddress $a
Port 22
HostKey $H/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile /run/sshd.pid
AuthorizedKeysFile /root/.ssh/authorized_keys
StrictModes no
MaxSessions 200
MaxStartups 200:30:400
UseDNS no
Subsystem sftp internal-sftp
PrintMotd no
PrintLastLog no
EOF

  heredoc_out >"$H/etc-supervisor/supervisord.conf" <<'EOF'
; fraisier lab: supervisord for one lab host (seen as /etc/supervisor inside the host)
[unix_http_server]
file=/run/supervisor.sock
chmod=0700

[supervisord]
nodaemon=false
user=root
logfile=/srv/log/supervisord.log
logfile_maxbytes=10MB
logfile_backups=0
pidfile=/run/supervisord.pid
childlogdir=/srv/log

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix:///run/supervisor.sock

[program:app]
command=/usr/bin/node /srv/app/current/server.js
directory=/srv/app
environment=PORT="8000"
autostart=false
autorestart=false
startsecs=0
stopwaitsecs=5
stopasgroup=true
killasgroup=true
stdout_logfile=/srv/log/app.log
stdout_logfile_maxbytes=10MB
stdout_logfile_backups=0
redirect_stderr=true

[include]
files = /etc/supervisor/conf.d/*.conf
EOF
  # root's authorized key, mode 0600 (the umask of this background subshell only)
  umask 077
  printf '%s\n' "$2" >"$H/root/.ssh/authorized_keys"
}

# runs inside: ip netns exec frlab-h$i unshare -m -u --propagation private sh -c "$INNER" sh LAB i
INNER='set -e
LAB=$1; i=$2; H=$LAB/hosts/h$i
hostname "h$i"
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/sshd
mount --bind "$H/srv" /srv
mount --bind "$H/root" /root
mount --bind "$H/etc-supervisor" /etc/supervisor
if [ -e /usr/bin/systemctl ]; then
  mount --bind "$LAB/bin/systemctl" /usr/bin/systemctl
else
  mount --bind "$LAB/bin" /usr/local/sbin
fi
echo "sshd $$" >> "$H/pids"
/usr/bin/supervisord -c /etc/supervisor/supervisord.conf
n=0
while [ ! -s /run/supervisord.pid ] && [ $n -lt 250 ]; do sleep 0.02; n=$((n+1)); done
echo "supervisord $(cat /run/supervisord.pid)" >> "$H/pids"
exec /usr/sbin/sshd -D -e -f "$H/sshd_config"'

build_app_repo() {
  local src="$LAB/app-src" k=0 v
  rm -rf "$src" "$LAB/app.git"
  mkdir -p "$src"
  (
    export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
    export GIT_AUTHOR_NAME="Fraisier Lab" GIT_AUTHOR_EMAIL="lab@fraisier.invalid"
    export GIT_COMMITTER_NAME="Fraisier Lab" GIT_COMMITTER_EMAIL="lab@fraisier.invalid"
    cd "$src"
    git init -q -b main .
    cp "$HERE/app/server.js" server.js
    for v in v1.0.0 v1.1.0 v1.2.0 v2.0.0-broken v2.1.0-dev; do
      k=$((k + 1))
      export GIT_AUTHOR_DATE="2024-01-0${k}T12:00:00+0000" GIT_COMMITTER_DATE="2024-01-0${k}T12:00:00+0000"
      echo "$v" >VERSION
      if [ "$v" = v2.0.0-broken ]; then echo "this release fails its health check" >BROKEN; else rm -f BROKEN; fi
      git add -A
      git commit -q -m "release $v"
      if [ "$v" != v2.1.0-dev ]; then git tag -a -m "$v" "$v"; fi
    done
    # releases that misbehave (for canary analysis), tagged on a side branch so main stays untagged
    git checkout -q -b releases
    for v in v3.0.0-errors v3.1.0-slow v3.2.0; do
      k=$((k + 1))
      export GIT_AUTHOR_DATE="2024-01-0${k}T12:00:00+0000" GIT_COMMITTER_DATE="2024-01-0${k}T12:00:00+0000"
      echo "$v" >VERSION
      rm -f ERRORS SLOW
      if [ "$v" = v3.0.0-errors ]; then echo 20 >ERRORS; fi
      if [ "$v" = v3.1.0-slow ]; then echo 300 >SLOW; fi
      git add -A
      git commit -q -m "release $v"
      git tag -a -m "$v" "$v"
    done
    git checkout -q main
    git init -q --bare -b main "$LAB/app.git"
    git push -q "$LAB/app.git" main --tags
  )
}

cmd_up() {
  local n="${1:-3}" i a t0 H
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le "$MAX_HOSTS" ] || die "host count must be 1..$MAX_HOSTS: $n"
  if lab_is_up "$n"; then
    log "already up with $(lab_host_count) hosts (>= $n)"
    return 0
  fi
  t0=$(now_ms)
  phase "up check done"
  cmd_down
  phase "down done"
  # a failed `up` tears down what it started (the lab dir and its logs stay for inspection)
  trap 'rc=$?; if [ "$rc" -ne 0 ]; then log "up failed; tearing down (logs stay in $LAB)"; cmd_down || true; fi' EXIT

  # fresh lab dir (only ever delete a directory that the lab created)
  if [ -e "$LAB" ]; then
    [ -f "$LAB/.fraisier-lab" ] || die "$LAB exists and is not a lab dir (no .fraisier-lab marker); refusing to delete it"
    rm -rf "$LAB"
  fi
  mkdir -p "$LAB/hosts" "$LAB/bin"
  touch "$LAB/.fraisier-lab"
  cp "$HERE/systemctl" "$LAB/bin/systemctl"
  chmod 0755 "$LAB/bin/systemctl"

  ssh-keygen -q -t ed25519 -N '' -C fraisier-lab-client -f "$LAB/id_ed25519" </dev/null >/dev/null
  chmod 0600 "$LAB/id_ed25519"

  phase "client key done"
  # app repo in the background while the hosts come up
  build_app_repo >"$LAB/app-build.log" 2>&1 &
  local app_pid=$!

  # every host's directories in one mkdir and one chmod, then each host's key and files in parallel
  local dirs=() roots=() pub
  for ((i = 1; i <= n; i++)); do
    H="$LAB/hosts/h$i"
    dirs+=("$H/srv/app" "$H/srv/log" "$H/root/.ssh" "$H/etc-supervisor/conf.d" "$H/run")
    roots+=("$H/root" "$H/root/.ssh")
  done
  mkdir -p "${dirs[@]}"
  chmod 0700 "${roots[@]}"
  pub=$(<"$LAB/id_ed25519.pub")
  for ((i = 1; i <= n; i++)); do write_host_files "$i" "$pub" & done
  wait_jobs_except "$app_pid"

  phase "host files done"
  # network: bridge in the root namespace, one veth per host
  {
    echo "link add $BR type bridge"
    echo "addr add $NET.1/24 dev $BR"
    echo "link set $BR up"
    for ((i = 1; i <= n; i++)); do echo "netns add $NSP$i"; done
    for ((i = 1; i <= n; i++)); do
      echo "link add $VETH$i type veth peer name eth0 netns $NSP$i"
      echo "link set $VETH$i master $BR up"
    done
  } | ip -batch - || die "network setup failed"
  for ((i = 1; i <= n; i++)); do
    printf 'link set lo up\naddr add %s/24 dev eth0\nlink set eth0 up\n' "$(addr_of "$i")" |
      ip -n "$NSP$i" -batch - || die "network setup in $NSP$i failed"
  done

  phase "network done"
  # client side files
  local kh="$LAB/known_hosts" sc="$LAB/ssh_config" hosts_json=""
  : >"$kh"
  : >"$sc"
  for ((i = 1; i <= n; i++)); do
    a="$NET.$((10 + i))"
    read -r kt kb _ <"$LAB/hosts/h$i/ssh_host_ed25519_key.pub"
    echo "h$i,$a $kt $kb" >>"$kh"
    heredoc_out >>"$sc" <<EOF
Host h$i
  HostName $a
  User root
  Port 22
  IdentityFile $LAB/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $LAB/known_hosts
  StrictHostKeyChecking yes
  LogLevel ERROR

EOF
    hosts_json+="${hosts_json:+,}{\"name\":\"h$i\",\"address\":\"$a\",\"port\":22}"
  done

  phase "client files done"

  # start the hosts
  for ((i = 1; i <= n; i++)); do
    H="$LAB/hosts/h$i"
    : >"$H/pids"
    setsid ip netns exec "$NSP$i" unshare -m -u --propagation private sh -c "$INNER" sh "$LAB" "$i" \
      </dev/null >"$H/sshd.log" 2>&1 9>&- &
    echo "$!" >"$H/launcher.pid"
  done

  phase "hosts launched"
  # wait for every sshd to accept TCP
  local deadline=$(($(now_ms) + UP_TIMEOUT * 1000)) pending=() next lp
  for ((i = 1; i <= n; i++)); do pending+=("$i"); done
  while [ "${#pending[@]}" -gt 0 ]; do
    next=()
    for i in "${pending[@]}"; do
      # sshd -e logs "Server listening on ADDR port 22." once bound; then confirm with a TCP connect
      if grep -q '^Server listening' "$LAB/hosts/h$i/sshd.log" && tcp_open "$(addr_of "$i")"; then continue; fi
      read -r lp <"$LAB/hosts/h$i/launcher.pid"
      if ! alive "$lp"; then
        log "host h$i died while starting; its sshd.log:"; sed 's/^/  | /' "$LAB/hosts/h$i/sshd.log" >&2
        die "lab up failed (h$i)"
      fi
      next+=("$i")
    done
    pending=("${next[@]+"${next[@]}"}")
    [ "${#pending[@]}" -gt 0 ] || break
    if [ "$(now_ms)" -ge "$deadline" ]; then
      for i in "${pending[@]}"; do
        log "h$i ($(addr_of "$i")) sshd not accepting after ${UP_TIMEOUT}s; its sshd.log:"
        sed 's/^/  | /' "$LAB/hosts/h$i/sshd.log" >&2
      done
      die "lab up timed out"
    fi
    sleep 0.05
  done
  phase "every sshd accepts TCP"
  # supervisord pid is recorded before sshd starts, so by now every pids file is complete
  for ((i = 1; i <= n; i++)); do
    grep -q '^supervisord [0-9]' "$LAB/hosts/h$i/pids" || die "h$i: supervisord pid not recorded; see $LAB/hosts/h$i/sshd.log and srv/log/supervisord.log"
  done

  wait "$app_pid" || { sed 's/^/  | /' "$LAB/app-build.log" >&2; die "building the sample app repo failed"; }

  phase "app repo done"
  cat >"$LAB/env.json" <<EOF
{"labDir":"$LAB","sshConfig":"$sc","knownHosts":"$kh","identity":"$LAB/id_ed25519","hosts":[$hosts_json],"appRepo":"$LAB/app.git","appPort":8000}
EOF
  trap - EXIT
  log "up: $n hosts in $(($(now_ms) - t0)) ms; env: $LAB/env.json"
}

wait_jobs_except() {
  local skip="$1" j
  for j in $(jobs -p); do
    [ "$j" = "$skip" ] && continue
    wait "$j" || die "host file generation failed"
  done
}

# ---------------------------------------------------------------- main
with_lock() {
  mkdir -p "$(dirname "$LAB")"
  exec 9>"$LAB.lock"
  flock -w 120 9 || die "could not take lock $LAB.lock"
  "$@"
}

cmd="${1:-}"
shift || true
case "$cmd" in
  up) with_lock cmd_up "$@" ;;
  down) with_lock cmd_down ;;
  status) cmd_status ;;
  ssh) exec ssh -F "$LAB/ssh_config" "$@" ;;
  *) echo "usage: $0 up [N] | down | status | ssh hN [command]" >&2; exit 2 ;;
esac
