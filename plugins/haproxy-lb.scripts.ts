/**
 * The shell scripts the haproxy-lb plugin runs on the HAProxy host, and the commands built from them.
 *
 * Every script is a fixed text run as `sh -c <script> fraisier-haproxy <values...>`: values are positional
 * parameters ($1, $2...), never spliced into the text. test/plugins/scripts.test.ts runs shellcheck
 * (dialect `sh`) on every script in {@link haproxyLbScripts}.
 */
import { command, type Command } from '../core/exec/command.js';

/** A fixed shell script; values are positional parameters ($1, $2...), never parsed as shell. */
export function script(text: string, ...args: string[]): Command {
  return command('sh', '-c', text, 'fraisier-haproxy', ...args);
}

/** Sends one runtime-API line ($3, `;`-separated commands) to the socket ($2) with socat ($1); prints the answer. */
const RUNTIME = `command -v "$1" >/dev/null 2>&1 || { echo "$1 not found: install socat (it talks to HAProxy's admin socket)" >&2; exit 127; }
[ -S "$2" ] || { echo "no HAProxy admin socket at $2 (is HAProxy running, with 'stats socket $2 level admin'?)" >&2; exit 3; }
printf '%s\\n' "$3" | "$1" -t 10 stdio "UNIX-CONNECT:$2"`;

/**
 * Polls `show stat` every 50 ms until server $4 of backend $3 has no current session and nothing queued,
 * for at most $5 ms. Prints `drained` or `timeout <sessions>`.
 */
const WAIT_DRAINED = `socat=$1; sock=$2; be=$3; srv=$4; ms=$5
cs() { read -r up _ < /proc/uptime; C=\${up%.*}\${up#*.}; }
cs; deadline=$((C + (ms + 9) / 10))
while :; do
  n=$(printf 'show stat %s 4 -1\\n' "$be" | "$socat" -t 10 stdio "UNIX-CONNECT:$sock" | awk -F, -v b="$be" -v s="$srv" '$1 == b && $2 == s { print $3 + $5 }')
  [ -n "$n" ] || { echo "HAProxy reports no server $be/$srv" >&2; exit 3; }
  [ "$n" -eq 0 ] && { echo drained; exit 0; }
  cs; [ "$C" -lt "$deadline" ] || { echo "timeout $n"; exit 0; }
  sleep 0.05
done`;

/**
 * Polls `show stat` every 50 ms until server $4 of backend $3 is up for HAProxy (status `UP...`, or
 * `no check` for a server without health checks), for at most $5 ms. Prints `up` or `timeout <status>`.
 */
const WAIT_UP = `socat=$1; sock=$2; be=$3; srv=$4; ms=$5
cs() { read -r up _ < /proc/uptime; C=\${up%.*}\${up#*.}; }
cs; deadline=$((C + (ms + 9) / 10))
while :; do
  st=$(printf 'show stat %s 4 -1\\n' "$be" | "$socat" -t 10 stdio "UNIX-CONNECT:$sock" | awk -F, -v b="$be" -v s="$srv" '$1 == b && $2 == s { print $18 }')
  [ -n "$st" ] || { echo "HAProxy reports no server $be/$srv" >&2; exit 3; }
  case "$st" in UP*|"no check") echo up; exit 0 ;; esac
  cs; [ "$C" -lt "$deadline" ] || { echo "timeout $st"; exit 0; }
  sleep 0.05
done`;

/** Writes $2 to $1 atomically (temp file, rename), creating the directory. */
const WRITE = `set -e
mkdir -p "$(dirname "$1")"
printf '%s\\n' "$2" > "$1.tmp"
mv -f "$1.tmp" "$1"`;

/** Prints the file $1, or nothing if there is none. */
const READ = `if [ -f "$1" ]; then cat "$1"; fi`;

/** Removes the file $1 (nothing if there is none). */
const REMOVE = `rm -f "$1"`;

/** Commands the plugin runs on the HAProxy host, as data (unit tests assert them; dry runs print them). */
export const haproxyLbCommands = {
  /** `show servers state <backend>`: addresses, operational and administrative states, weights. */
  states: (socat: string, socket: string, backend: string): Command => ({
    ...script(RUNTIME, socat, socket, `show servers state ${backend}`),
    readOnly: true,
    label: `haproxy: show servers state ${backend}`,
  }),
  /** The CLI level of the socket (`admin` is needed to change servers). */
  level: (socat: string, socket: string): Command => ({
    ...script(RUNTIME, socat, socket, 'show cli level'),
    readOnly: true,
    label: 'haproxy: show cli level',
  }),
  /** Runs runtime-API commands in one connection, in order (HAProxy answers nothing to a successful `set`). */
  set: (socat: string, socket: string, lines: readonly string[]): Command => ({
    ...script(RUNTIME, socat, socket, lines.join('; ')),
    label: `haproxy: ${lines.join('; ')}`,
  }),
  waitDrained: (socat: string, socket: string, backend: string, server: string, timeoutMs: number): Command => ({
    ...script(WAIT_DRAINED, socat, socket, backend, server, String(Math.max(1, Math.round(timeoutMs)))),
    label: `haproxy: wait for ${backend}/${server} to drain`,
  }),
  /** Waits (bounded) until HAProxy's own health checks see the server up again. */
  waitUp: (socat: string, socket: string, backend: string, server: string, timeoutMs: number): Command => ({
    ...script(WAIT_UP, socat, socket, backend, server, String(Math.max(1, Math.round(timeoutMs)))),
    readOnly: true,
    label: `haproxy: wait for ${backend}/${server} to be up`,
  }),
  readPool: (file: string): Command => ({ ...script(READ, file), readOnly: true, label: `read ${file}` }),
  writePool: (file: string, text: string): Command => ({ ...script(WRITE, file, text), label: `write ${file}` }),
  removePool: (file: string): Command => ({ ...script(REMOVE, file), label: `remove ${file}` }),
};

/** Every script above by name, for the shellcheck test. */
export const haproxyLbScripts: Readonly<Record<string, string>> = { RUNTIME, WAIT_DRAINED, WAIT_UP, WRITE, READ, REMOVE };
