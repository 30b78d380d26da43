/**
 * The shell scripts the nginx-lb plugin runs on the nginx host, and the commands built from them.
 *
 * Every script is a fixed text run as `sh -c <script> fraisier-nginx <values...>`: values are positional
 * parameters ($1, $2...), never spliced into the text. test/plugins/scripts.test.ts runs shellcheck
 * (dialect `sh`) on every script in {@link nginxLbScripts}.
 */
import { command, type Command } from '../core/exec/command.js';

/** A fixed shell script; values are positional parameters ($1, $2...), never parsed as shell. */
export function script(text: string, ...args: string[]): Command {
  return command('sh', '-c', text, 'fraisier-nginx', ...args);
}

const PID_CHECK = `pf=$1
[ -s "$pf" ] || { echo "no nginx pid file at $pf: nginx is not running" >&2; exit 3; }
pid=$(cat "$pf")
case "$pid" in ''|*[!0-9]*) echo "pid file $pf does not hold a pid" >&2; exit 3;; esac
kill -0 "$pid" 2>/dev/null || { echo "nginx master $pid (from $pf) is not running" >&2; exit 4; }
comm=$(ps -o comm= -p "$pid" 2>/dev/null)
case "$comm" in nginx*) echo "$pid";; *) echo "process $pid (from $pf) is $comm, not nginx" >&2; exit 4;; esac`;

/** Writes $2 to $1 atomically: $1.tmp, the old file kept as $1.prev, then a rename into place. */
const INSTALL = `set -e
f=$1
printf '%s' "$2" > "$f.tmp"
if [ -e "$f" ]; then cp -p "$f" "$f.prev"; else rm -f "$f.prev"; fi
mv -f "$f.tmp" "$f"`;

/** Puts $1.prev back (or removes $1 if there was none). */
const RESTORE = `f=$1
if [ -e "$f.prev" ]; then cp -p "$f.prev" "$f.tmp" && mv -f "$f.tmp" "$f"; else rm -f "$f"; fi`;

/**
 * HUP to the master ($1), then poll its children every 20 ms for at most $2 ms (reading /proc with shell
 * builtins: no fork per poll). The reload is confirmed when a worker that did not exist before has
 * appeared AND every old worker has stopped accepting new
 * connections (its title turns to "worker process is shutting down", or it is gone): nginx's master
 * sleeps 100 ms after starting the new workers before it tells the old ones to quit, and until then
 * both accept, so a new worker alone does not mean new requests see the new config. With $3 = drain,
 * also wait until every old worker has exited (finished its in-flight requests).
 * Prints `applied`, `drained` or `timeout <left>`.
 */
const RELOAD = `pid=$1; ms=$2; mode=$3
cf=/proc/$pid/task/$pid/children
# Time in centiseconds from /proc/uptime into $C (a builtin read: no fork).
cs() { read -r up _ < /proc/uptime; C=\${up%.*}\${up#*.}; }
cs; deadline=$((C + (ms + 9) / 10))
# The master's children into $K, without forking when the kernel lists them in /proc (it does on Linux >= 3.5).
kids() { K=''; if [ -r "$cf" ]; then read -r K < "$cf" || :; else K=$(ps -o pid= --ppid "$pid" | tr -s ' \\n' '  '); fi; }
kids; old=" $K "
kill -HUP "$pid" || { echo "cannot send HUP to the nginx master $pid" >&2; exit 1; }
new=0; left=0; accepting=0
while :; do
  new=0; left=0; accepting=0
  kids
  for k in $K; do
    case "$old" in
      *" $k "*)
        left=$((left+1))
        t=''; read -r t 2>/dev/null < "/proc/$k/cmdline" || :
        case "$t" in
          *"shutting down"*|"") ;;
          *"worker process"*) accepting=$((accepting+1));;
        esac;;
      *) new=$((new+1));;
    esac
  done
  if [ "$new" -gt 0 ] && [ "$accepting" -eq 0 ]; then
    [ "$mode" = drain ] || { echo applied; exit 0; }
    [ "$left" -eq 0 ] && { echo drained; exit 0; }
  fi
  cs; [ "$C" -lt "$deadline" ] || break
  sleep 0.02
done
if [ "$new" -eq 0 ]; then
  kill -0 "$pid" 2>/dev/null || { echo "the nginx master $pid exited during the reload" >&2; exit 5; }
  echo "nginx (master $pid) started no new workers after the reload: the new configuration was not applied; see nginx's error log" >&2
  exit 6
fi
echo "timeout $left"`;

/**
 * No reload: waits until no worker of the master ($1) is "shutting down" any more (the old workers of
 * earlier reloads have finished their in-flight requests and exited), polling every 20 ms for at most
 * $2 ms. Used before restarting a target whose server a reload without drain (a weight of 0) already took
 * out of the traffic: the file is unchanged, but old workers may still be serving requests on it.
 * Prints `drained` or `timeout <left>`.
 */
const SETTLE = `pid=$1; ms=$2
cf=/proc/$pid/task/$pid/children
cs() { read -r up _ < /proc/uptime; C=\${up%.*}\${up#*.}; }
cs; deadline=$((C + (ms + 9) / 10))
kill -0 "$pid" 2>/dev/null || { echo "nginx master $pid is not running" >&2; exit 4; }
left=0
while :; do
  K=''; if [ -r "$cf" ]; then read -r K < "$cf" || :; else K=$(ps -o pid= --ppid "$pid" | tr -s ' \\n' '  '); fi
  left=0
  for k in $K; do
    t=''; read -r t 2>/dev/null < "/proc/$k/cmdline" || :
    case "$t" in *"shutting down"*) left=$((left+1));; esac
  done
  [ "$left" -eq 0 ] && { echo drained; exit 0; }
  cs; [ "$C" -lt "$deadline" ] || break
  sleep 0.02
done
echo "timeout $left"`;

/** Prints the file $1, or nothing if there is none yet. */
const READ = `if [ -f "$1" ]; then cat "$1"; fi`;

/** Runs nginx ("$@": the binary and its extra arguments) with -T, a separator, then -V (to find the pid file). */
const DUMP = `"$@" -T 2>/dev/null; echo "#---fraisier---"; "$@" -V 2>&1`;

/** Commands the plugin runs on the nginx host, as data (unit tests assert them; dry runs print them). */
export const nginxLbCommands = {
  /** Prints the generated file, or nothing if there is none yet. */
  read: (file: string): Command => ({ ...script(READ, file), readOnly: true, label: `read ${file}` }),
  /** Dumps the config and the build options, to find the pid file. */
  dump: (nginx: string, args: string[]): Command => ({
    ...script(DUMP, nginx, ...args),
    readOnly: true,
    label: 'nginx -T (find the pid file)',
  }),
  pid: (pidFile: string): Command => ({ ...script(PID_CHECK, pidFile), readOnly: true, label: 'check nginx is running' }),
  install: (file: string, text: string): Command => ({ ...script(INSTALL, file, text), label: `write ${file}` }),
  test: (nginx: string, args: string[]): Command => ({ ...command(nginx, ...args, '-t', '-q'), label: 'nginx -t' }),
  restore: (file: string): Command => ({ ...script(RESTORE, file), label: `restore ${file} from ${file}.prev` }),
  reload: (pid: number, timeoutMs: number, drain: boolean): Command => ({
    ...script(RELOAD, String(pid), String(Math.max(1, Math.round(timeoutMs))), drain ? 'drain' : 'apply'),
    label: `reload nginx (HUP ${pid})${drain ? ' and drain' : ''}`,
  }),
  /** No reload: waits (at most `timeoutMs`) for the old workers of earlier reloads to finish and exit. */
  settle: (pid: number, timeoutMs: number): Command => ({
    ...script(SETTLE, String(pid), String(Math.max(1, Math.round(timeoutMs)))),
    label: `wait for old nginx workers (master ${pid}) to drain`,
  }),
};

/** Every script above by name, for the shellcheck test. */
export const nginxLbScripts: Readonly<Record<string, string>> = { PID_CHECK, INSTALL, RESTORE, RELOAD, SETTLE, READ, DUMP };
