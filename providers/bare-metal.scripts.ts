/**
 * The shell scripts the bare_metal provider runs on each host, and the commands built from them.
 *
 * Every script is a fixed text run as `sh -c <script> fraisier <values...>`: values are positional
 * parameters ($1, $2...), never spliced into the text, so a value is never parsed as shell.
 * test/providers/scripts.test.ts runs shellcheck (dialect `sh`) on every script in {@link bareMetalScripts}.
 */
import { command, type Command } from '../core/exec/command.js';
import type { ServiceManager } from './bare-metal.js';

/** A fixed shell script with values passed as positional parameters ($1, $2...), so values are never parsed as shell. */
export function script(text: string, ...args: string[]): Command {
  return command('sh', '-c', text, 'fraisier', ...args);
}

/**
 * Links each shared path (the remaining positional parameters) from "$app/shared/<p>" into the release
 * being built in "$tmp". Checked again here, whatever the caller validated: a path that is empty,
 * absolute, or has a ".", ".." or empty component is refused (exit 5) before anything is created or
 * removed, and so is a path reached through a symlink inside the release (a symlink in the repository,
 * or another shared path), so that "rm -rf" only ever removes an entry of the release directory itself.
 */
const LINK_SHARED = `for p in "$@"; do
  case "/$p/" in
    //*|*//*|*/./*|*/../*) echo "refusing shared path '$p': expected a relative path inside the release, without '.', '..' or empty components" >&2; rm -rf "$tmp"; exit 5;;
  esac
  d=$(dirname "$p")
  while [ "$d" != . ]; do
    if [ -L "$tmp/$d" ]; then echo "refusing shared path '$p': '$d' is a symlink in the release, so the path would leave the release directory" >&2; rm -rf "$tmp"; exit 5; fi
    d=$(dirname "$d")
  done
  mkdir -p "$app/shared/$p"; rm -rf "\${tmp:?}/$p"; mkdir -p "$(dirname "$tmp/$p")"; ln -s "$app/shared/$p" "$tmp/$p"
done`;

/** Builds release $v from the mirror in "$app/repo" (fetched unless it has $rev); $@ are the shared paths. */
const PREPARE_GIT_BODY = `rel="$app/releases/$v"
[ -f "$rel/.fraisier-release" ] && exit 0
mkdir -p "$app/releases" "$app/shared"
# the mirror already has the resolved commit (the host that resolved the version just fetched): no second fetch
if [ -n "$rev" ] && git -C "$app/repo" cat-file -e "$rev^{commit}" 2>/dev/null; then :
elif [ -d "$app/repo" ]; then
  git -C "$app/repo" remote set-url origin "$repo"
  git -C "$app/repo" fetch --quiet --prune --force --tags origin '+refs/heads/*:refs/heads/*'
else
  git clone --quiet --mirror "$repo" "$app/repo"
fi
[ -n "$rev" ] || rev=$(git -C "$app/repo" rev-parse --verify --quiet "$v^{commit}") || { echo "unknown release $v" >&2; exit 3; }
tmp="$app/releases/.tmp-$v-$$"
rm -rf "$tmp"; mkdir -p "$tmp"
git -C "$app/repo" archive "$rev" | tar -x -C "$tmp"
echo "$rev" > "$tmp/REVISION"
${LINK_SHARED}
if [ -n "$build" ]; then (cd "$tmp" && sh -c "$build") || { rm -rf "$tmp"; echo "build failed" >&2; exit 4; }; fi
touch "$tmp/.fraisier-release"
mv -T "$tmp" "$rel"`;

const PREPARE_GIT = `set -e
app=$1; v=$2; rev=$3; repo=$4; build=$5; shift 5
${PREPARE_GIT_BODY}`;

const PREPARE_ARTIFACT = `set -e
app=$1; v=$2; build=$3; shift 3
rel="$app/releases/$v"
mkdir -p "$app/releases" "$app/shared"
tmp="$app/releases/.tmp-$v-$$"
rm -rf "$tmp"; mkdir -p "$tmp"
tar -x -C "$tmp"
${LINK_SHARED}
if [ -n "$build" ]; then (cd "$tmp" && sh -c "$build") || { rm -rf "$tmp"; echo "build failed" >&2; exit 4; }; fi
touch "$tmp/.fraisier-release"
rm -rf "$rel"
mv -T "$tmp" "$rel"`;

/** Removes the oldest releases beyond $keep, never "current" nor a release named in $@. */
const CLEANUP_BODY = `cd "$app/releases" 2>/dev/null || exit 0
cur=$(basename "$(readlink "$app/current" 2>/dev/null)" 2>/dev/null)
# shellcheck disable=SC2012 # oldest first needs ls -t (find cannot sort by time); names are validated versions
n=$(ls -1tr | wc -l)
# shellcheck disable=SC2012 # as above
ls -1tr | head -n "$((n > keep ? n - keep : 0))" | while IFS= read -r r; do
  keepit=0; [ "$r" = "$cur" ] && keepit=1
  for k in "$@"; do [ "$r" = "$k" ] && keepit=1; done
  [ $keepit = 1 ] || rm -rf -- "$r"
done
rm -rf .tmp-* 2>/dev/null || true`;

const CLEANUP = `app=$1; keep=$2; shift 2
${CLEANUP_BODY}`;

/**
 * Every preflight check, as a shell function reading $app, $git, $stype and $sname: prints `uid=`,
 * `current=` and one `problem=<what>` line per failed check; changes nothing. It starts few processes
 * (each costs a fork and an exec, tens of ms on a loaded host): the effective uid is read from
 * /proc/self/status by the shell itself (`id -u` where there is no /proc), and the supervisor check
 * reads its files with the shell's own `read` and `test -nt`, not grep and find.
 */
const PREFLIGHT_CHECKS = `preflight_checks() {
uid=
# shellcheck disable=SC2034 # r (the real uid) is read only to reach the effective one
while read -r k r e _; do if [ "$k" = Uid: ]; then uid=$e; break; fi; done </proc/self/status 2>/dev/null
case "$uid" in ''|*[!0-9]*) uid=$(id -u);; esac
echo "uid=$uid"
cur=$(readlink "$app/current" 2>/dev/null) && echo "current=\${cur##*/}"
if [ -e "$app" ]; then
  [ -d "$app" ] || echo "problem=$app exists and is not a directory"
  [ -w "$app" ] || echo "problem=$app is not writable by $(id -un)"
else
  p=$(dirname "$app"); while [ ! -e "$p" ]; do p=$(dirname "$p"); done
  [ -w "$p" ] || echo "problem=cannot create $app: $p is not writable by $(id -un)"
fi
if [ "$git" = 1 ] && ! command -v git >/dev/null 2>&1; then echo "problem=git is not installed (use an artifact source for hosts without git)"; fi
case "$stype" in
  systemd)
    if [ "$uid" = 0 ]; then systemctl cat -- "$sname" >/dev/null 2>&1; else sudo -n systemctl cat -- "$sname" >/dev/null 2>&1; fi ||
      echo "problem=systemd unit $sname is not known on this host (or sudo -n is not allowed)";;
  supervisor)
    # Cheap check first (no Python): supervisord's config in a standard place, its pidfile names a live
    # supervisord (not a reused pid), its socket exists, and [program:$sname] is in that config or its
    # includes, none of them changed since supervisord started (so what they say is loaded). Anything
    # else (another config location, a user who may not signal supervisord...) asks supervisorctl.
    c=; for f in /etc/supervisor/supervisord.conf /etc/supervisord.conf; do if [ -f "$f" ]; then c=$f; break; fi; done
    pidf=; sock=; inc=
    if [ -n "$c" ]; then
      IFS='|' read -r pidf sock inc <<EOF
$(awk '/^[[:space:]]*\\[/ { s = $0; gsub(/[[:space:]]/, "", s); next }
  /=/ { k = $0; sub(/=.*/, "", k); gsub(/[[:space:]]/, "", k); v = $0; sub(/^[^=]*=[[:space:]]*/, "", v); sub(/[[:space:]]*[;#].*$/, "", v) }
  s == "[supervisord]" && k == "pidfile" { p = v }
  s == "[unix_http_server]" && k == "file" { f = v }
  s == "[include]" && k == "files" { i = v }
  END { printf "%s|%s|%s\\n", p, f, i }' "$c" 2>/dev/null)
EOF
      set -- "$c"
      # shellcheck disable=SC2086 # the include line is a list of globs, relative to the config's directory
      for g in $inc; do case $g in /*) ;; *) g="\${c%/*}/$g";; esac; for x in $g; do if [ -f "$x" ]; then set -- "$@" "$x"; fi; done; done
    fi
    # the pid is supervisord's (its name, else its command line), [program:$sname] is a line of one of the
    # files, and none of them is as new as the pidfile (same second or later: not known to be loaded)
    known=
    if [ -n "$pidf" ] && [ -S "$sock" ] && read -r pid 2>/dev/null <"$pidf" && kill -0 "$pid" 2>/dev/null; then
      comm=; read -r comm 2>/dev/null <"/proc/$pid/comm" || true
      case "$comm" in supervisord*) known=1;; *) if grep -qs supervisord "/proc/$pid/cmdline"; then known=1; fi;; esac
    fi
    if [ -n "$known" ]; then
      known=
      for x in "$@"; do
        # shellcheck disable=SC3013 # -nt is in dash, bash, ksh and busybox; a shell without it fails the test: supervisorctl decides
        [ "$pidf" -nt "$x" ] || { known=; break; }
        [ -n "$known" ] && continue
        while IFS= read -r l || [ -n "$l" ]; do if [ "$l" = "[program:$sname]" ]; then known=1; break; fi; done 2>/dev/null <"$x"
      done
    fi
    if [ -n "$known" ]; then :
    else
      out=$(supervisorctl status "$sname" 2>&1); rc=$?
      case "$out" in
        *"no such process"*) echo "problem=supervisor program $sname is not known on this host";;
        *) case $rc in 0|3) ;; *) echo "problem=supervisor: $(printf '%s' "$out" | tail -n 1)";; esac;;
      esac
    fi;;
esac
}`;

/**
 * One round trip per host before anything changes: who we are, what is live, and every check. With a
 * repository as $5 (the first host of a deployment that resolves a version), also its refs, read-only
 * (`git ls-remote`, one `ref=<sha> <name>` line each, listed while the checks run and printed after their
 * lines): the version is resolved without a round trip of its own.
 */
const PREFLIGHT = `app=$1; git=$2; stype=$3; sname=$4; refsof=\${5:-}; listing=\${6:-}
${PREFLIGHT_CHECKS}
list_refs() {
  if command -v git >/dev/null 2>&1 && refs=$(git ls-remote -- "$refsof" 2>/dev/null); then
    printf '%s\n' "$refs" | sed 's/^/ref=/'; echo "refs=ok"
  fi
}
# the refs are listed (read-only) while the checks run; printed after them
if [ -n "$refsof" ]; then list_refs | { preflight_checks </dev/null; cat; }; else preflight_checks; fi
# the releases, oldest first, as RELEASES lists them (fraisier status: no round trip of its own): last,
# after a \`releases=ok\` line, one name a line, as ls prints them (one process, no subshell nor sed)
if [ -n "$listing" ]; then
  echo "releases=ok"
  if [ -d "$app/releases" ]; then ls -1tr -- "$app/releases" 2>/dev/null; fi
fi
exit 0`;

/**
 * A shell function reading $sname: `supervisorctl restart "$sname"` without starting Python (`supervisorctl`
 * is a Python program: ~0.3 s of CPU before it sends anything). The same two XML-RPC calls supervisorctl
 * makes, `supervisor.stopProcess` then `supervisor.startProcess` (each waiting in supervisord as
 * supervisorctl's do: `stopwaitsecs`, `startsecs`), sent with curl to the unix socket supervisorctl would
 * use, and printed as supervisorctl prints them (`<name>: stopped` or `<name>: ERROR (not running)`, then
 * `<name>: started` or `<name>: ERROR (spawn error)`...). Only when it would talk to the same supervisord
 * the same way: curl and supervisorctl installed, the program named plainly, the config supervisorctl would
 * read (its search order) with a `[supervisorctl]` `serverurl=unix:///...` socket and no username or
 * password. Anything else, or an answer that is not one of those, runs supervisorctl itself.
 */
const SUPERVISOR_RESTART = `supervisor_rpc() {
  curl -sS --unix-socket "$sock" -H 'Content-Type: text/xml' --data-binary "<?xml version='1.0'?><methodCall><methodName>supervisor.$1</methodName><params><param><value><string>$sname</string></value></param></params></methodCall>" http://localhost/RPC2 2>/dev/null
}
supervisor_restart() {
sock=
if ctl=$(command -v supervisorctl) && command -v curl >/dev/null 2>&1; then
  case "$sname" in
    ''|*[!A-Za-z0-9_.-]*) ;;
    *)
      here=\${ctl%/*}; here=\${here%/*}
      for f in "$here/etc/supervisord.conf" "$here/supervisord.conf" supervisord.conf etc/supervisord.conf /etc/supervisord.conf /etc/supervisor/supervisord.conf; do
        if [ -e "$f" ]; then
          sock=$(awk '/^[[:space:]]*\\[/ { s = $0; gsub(/[[:space:]]/, "", s); next }
            s == "[supervisorctl]" && /=/ { k = $0; sub(/=.*/, "", k); gsub(/[[:space:]]/, "", k); v = $0; sub(/^[^=]*=[[:space:]]*/, "", v); sub(/[[:space:]]*[;#].*$/, "", v)
              if (k == "serverurl") u = v; if (k == "username" || k == "password") auth = 1 }
            END { if (!auth && u ~ /^unix:\\/\\/\\// && u !~ /[%~]/) print substr(u, 8) }' "$f" 2>/dev/null)
          break
        fi
      done;;
  esac
fi
if [ -n "$sock" ] && [ -S "$sock" ]; then
  r=$(supervisor_rpc stopProcess)
  case "$r" in
    *"<methodResponse>"*"<boolean>1</boolean>"*) echo "$sname: stopped";;
    *"<name>faultCode</name>"*"<int>70</int>"*) echo "$sname: ERROR (not running)";;
    *) sock=;;
  esac
fi
if [ -n "$sock" ]; then
  r=$(supervisor_rpc startProcess)
  case "$r" in
    *"<methodResponse>"*"<boolean>1</boolean>"*) echo "$sname: started"; return 0;;
    *"<name>faultCode</name>"*"<int>10</int>"*) echo "$sname: ERROR (no such process)"; return 0;;
    *"<name>faultCode</name>"*"<int>20</int>"*) echo "$sname: ERROR (no such file)"; return 0;;
    *"<name>faultCode</name>"*"<int>21</int>"*) echo "$sname: ERROR (file is not executable)"; return 0;;
    *"<name>faultCode</name>"*"<int>40</int>"*) echo "$sname: ERROR (abnormal termination)"; return 0;;
    *"<name>faultCode</name>"*"<int>50</int>"*) echo "$sname: ERROR (spawn error)"; return 0;;
    *"<name>faultCode</name>"*"<int>60</int>"*) echo "$sname: ERROR (already started)"; return 0;;
  esac
fi
supervisorctl restart "$sname"
}`;

/**
 * Switch and restart in one round trip. Exit 3: release missing; exit 4: restart failed. With $6 (keep)
 * and the releases to protect after it: once the switch and the restart succeeded, also removes the old
 * releases as {@link CLEANUP} does, in the same round trip; a failed cleanup prints `cleanup-failed=<why>`
 * and leaves the exit status 0.
 */
const ACTIVATE = `app=$1; v=$2; stype=$3; sname=$4; sudo=$5
${SUPERVISOR_RESTART}
[ -f "$app/releases/$v/.fraisier-release" ] || { echo "release $v is not on this host" >&2; exit 3; }
touch "$app/releases/$v"
ln -sfn "releases/$v" "$app/.current.tmp" && mv -T "$app/.current.tmp" "$app/current" || exit 3
case "$stype" in
  systemd) if [ "$sudo" = 1 ]; then sudo -n systemctl restart -- "$sname"; else systemctl restart -- "$sname"; fi || exit 4;;
  supervisor)
    out=$(supervisor_restart 2>&1)
    case "$out" in *"$sname: started"*) ;; *) printf '%s\n' "$out" >&2; exit 4;; esac;;
  command) (cd "$app/current" && sh -c "$sname") || exit 4;;
esac
[ -n "\${6:-}" ] || exit 0
shift 5; keep=$1; shift
if ! out=$( (${CLEANUP_BODY}) 2>&1); then echo "cleanup-failed=$(printf '%s' "$out" | tail -n 1)"; fi
exit 0`;

/** Lists the releases, oldest first (nothing when there are none). */
const RELEASES = `# shellcheck disable=SC2015 # on purpose: no releases directory and a failed ls both print nothing, exit 0
cd "$1/releases" 2>/dev/null && ls -1tr || true`;

/**
 * A shell function reading $app and $repo: prints `mirror=current` when the mirror in "$app/repo" already
 * has every branch and tag of $repo at the commit $repo has it (`git ls-remote`, read-only, against the
 * mirror's own refs): the same branches, and every tag (a fetch never prunes tags, so the mirror may keep
 * more). A fetch would then change nothing the resolution reads. Prints nothing when it does not, when
 * there is no mirror yet or git, or when the repository cannot be listed (the fetch then runs, and fails,
 * as before). Changes nothing.
 */
const MIRROR_CURRENT = `mirror_current() {
[ -d "$app/repo" ] && command -v git >/dev/null 2>&1 || return 0
{ git -C "$app/repo" show-ref --heads --tags -d 2>/dev/null; echo '='; git ls-remote --heads --tags -- "$repo" 2>/dev/null && echo '=listed'; } |
  awk '$0 == "=" { remote = 1; next }
    $0 == "=listed" { listed = 1; next }
    !remote { if ($2 != "") { have[$2] = $1; if ($2 ~ /^refs\\/heads\\//) heads++ }; next }
    $2 ~ /^refs\\/heads\\// { seen++ }
    $2 ~ /^refs\\/(heads|tags)\\// && have[$2] != $1 { differ = 1 }
    END { exit !(listed && !differ && seen == heads) }' && echo "mirror=current"
return 0
}`;

/**
 * Mirrors $repo in "$app/repo" and resolves $ref there: $sha, $short (7 characters) and $tag (the highest
 * version-sorted tag without "/" on it, or empty). The fetch is skipped when the caller found the mirror
 * current ($mirror = current, see {@link MIRROR_CURRENT}): it would have changed nothing. Needs set -e.
 */
const RESOLVE = `mkdir -p "$app"
if [ -d "$app/repo" ] && [ "\${mirror:-}" = current ]; then :
elif [ -d "$app/repo" ]; then
  git -C "$app/repo" remote set-url origin "$repo"
  git -C "$app/repo" fetch --quiet --prune --force --tags origin '+refs/heads/*:refs/heads/*'
else
  git clone --quiet --mirror "$repo" "$app/repo"
fi
sha=$(git -C "$app/repo" rev-parse --verify --quiet "$ref^{commit}") || { echo "unknown ref $ref" >&2; exit 3; }
tag=$(git -C "$app/repo" tag --points-at "$sha" --sort=-v:refname | grep -v / | head -n 1 || true)
short=$(git -C "$app/repo" rev-parse --short=7 "$sha")`;

/** Mirrors the repository on the host and resolves a ref ($3) to `<sha> <short> <tag-or-empty>`. */
const RESOLVE_REF = `set -e
app=$1; repo=$2; ref=$3
${RESOLVE}
echo "$sha $short $tag"`;

/**
 * Preflight, version resolution and prepare in ONE round trip, for a deployment with a single host.
 * The checks run first; a failed one prints its `problem=` lines and stops (exit 0) before anything is
 * created, fetched or built. While they run, {@link MIRROR_CURRENT} asks the repository (read-only) whether
 * the mirror is current (`mirror=current`); the script goes on only once both are done. Then `checked=ok`
 * (and `checks-ns=<start> <end>`: when the checks ran, in nanoseconds, so the prepare's own time can be
 * told apart), the ref resolved on the mirror as {@link RESOLVE_REF} does, without its fetch when the mirror
 * was current (`resolved=<sha> <short> <tag>`; an unknown ref exits 3 before any release directory
 * exists), and the release built as {@link PREPARE_GIT} builds it. A version the deployer would refuse
 * (see validateVersion) prints `prepared=no` and builds nothing.
 */
const PREFLIGHT_PREPARE_GIT = `app=$1; git=$2; stype=$3; sname=$4; repo=$5; ref=$6; build=$7; shift 7
${PREFLIGHT_CHECKS}
${MIRROR_CURRENT}
t0=$(date +%s%N 2>/dev/null)
# the checks, and meanwhile (read-only, in the background) whether the mirror needs a fetch; the
# pipeline ends when both did, and nothing below runs unless every check passed
out=$(mirror_current | { preflight_checks </dev/null; echo "checks-ns=$t0 $(date +%s%N 2>/dev/null)"; cat; })
printf '%s\\n' "$out"
case "$out" in problem=*|*"
problem="*) exit 0;;
esac
echo "checked=ok"
mirror=
case "$out" in *"
mirror=current"*) mirror=current;; esac
set -e
${RESOLVE}
echo "resolved=$sha $short $tag"
v=\${tag:-$short}
case "$v" in
  [!A-Za-z0-9]*|*[!A-Za-z0-9._+-]*|*..*|*.lock) echo "prepared=no"; exit 0;;
esac
if [ "\${#v}" -gt 200 ]; then echo "prepared=no"; exit 0; fi
rev=$sha
${PREPARE_GIT_BODY}`;

/**
 * After a failed command: is the disk under the app path full? Free space (`df`) and a 64 KB test write
 * inside the app path (removed at once; none when the app path does not exist yet). Run only after a failure, so a working deployment never writes it.
 */
export const SPACE_PROBE = `app=$1; d=$app; while [ ! -d "$d" ]; do d=$(dirname "$d"); done
echo "dir=$d"
echo "avail=$(df -Pk -- "$d" 2>/dev/null | awk 'NR==2 {print $4}')"
# the test write only ever happens inside the app path itself
if [ "$d" = "$app" ]; then
  f="$app/.fraisier-space-check-$$"
  { head -c 65536 /dev/zero > "$f"; } 2>/dev/null || echo "full=1"
  rm -f "$f"
fi
exit 0`;

/** The commands the bare_metal provider runs, as data (a unit test asserts them exactly). */
export const bareMetalCommands = {
  /**
   * `refsOf`: also list that repository's refs (`git ls-remote`, read-only), to resolve the version in the
   * same round trip. `listReleases`: also list the releases, for `fraisier status`: a `releases=ok` line,
   * then the releases' names, oldest first, one a line, to the end of the output.
   */
  preflight: (app: string, git: boolean, service: ServiceManager, refsOf?: string, listReleases = false): Command => ({
    ...script(
      PREFLIGHT,
      app,
      git ? '1' : '0',
      service.type,
      service.type === 'systemd' ? service.unit : service.type === 'supervisor' ? service.program : '',
      ...(refsOf || listReleases ? [refsOf ?? ''] : []),
      ...(listReleases ? ['1'] : []),
    ),
    readOnly: true,
    label: 'preflight checks',
  }),
  /** Switch `current` and restart the service, in one command. */
  /** With `prune`: then also remove the releases beyond `keep`, never `current` nor one in `protect` (as {@link bareMetalCommands.cleanup}). */
  activate: (app: string, v: string, service: ServiceManager, sudo: boolean, prune?: { keep: number; protect: readonly string[] }): Command => ({
    ...script(
      ACTIVATE,
      app,
      v,
      service.type,
      service.type === 'systemd' ? service.unit : service.type === 'supervisor' ? service.program : service.restart,
      sudo ? '1' : '0',
      ...(prune ? [String(prune.keep), ...prune.protect] : []),
    ),
    label: `switch to ${v} and restart`,
  }),
  current: (app: string): Command => ({ ...command('readlink', `${app}/current`), readOnly: true }),
  releases: (app: string): Command => ({ ...script(RELEASES, app), readOnly: true, label: 'list releases' }),
  hasRelease: (app: string, v: string): Command => ({ ...command('test', '-f', `${app}/releases/${v}/.fraisier-release`), readOnly: true }),
  prepareGit: (app: string, v: string, rev: string, repo: string, build: string, shared: string[]): Command => ({
    ...script(PREPARE_GIT, app, v, rev, repo, build, ...shared),
    label: `prepare release ${v} from git`,
  }),
  prepareArtifact: (app: string, v: string, build: string, shared: string[]): Command => ({
    ...script(PREPARE_ARTIFACT, app, v, build, ...shared),
    label: `unpack release ${v}`,
  }),
  /**
   * Preflight, resolution of `ref` and prepare of the release it names, in one round trip (a deployment
   * with one host): see PREFLIGHT_PREPARE_GIT. A failed check stops before anything changes.
   */
  preflightPrepareGit: (app: string, service: ServiceManager, repo: string, ref: string, build: string, shared: string[]): Command => ({
    ...script(
      PREFLIGHT_PREPARE_GIT,
      app,
      '1',
      service.type,
      service.type === 'systemd' ? service.unit : service.type === 'supervisor' ? service.program : '',
      repo,
      ref,
      build,
      ...shared,
    ),
    label: `preflight checks, resolve ${ref} and prepare the release`,
  }),
  /** Mirror the repository on the host and resolve a ref to `<sha> <tag-or-empty>`. */
  resolveRef: (app: string, repo: string, ref: string): Command => ({ ...script(RESOLVE_REF, app, repo, ref), label: `resolve ${ref}` }),
  cleanup: (app: string, keep: number, protect: string[]): Command => ({ ...script(CLEANUP, app, String(keep), ...protect), label: 'remove old releases' }),
};

/** Every script above by name, for the shellcheck test. */
export const bareMetalScripts: Readonly<Record<string, string>> = {
  PREPARE_GIT,
  PREPARE_ARTIFACT,
  CLEANUP,
  PREFLIGHT,
  ACTIVATE,
  RELEASES,
  RESOLVE_REF,
  PREFLIGHT_PREPARE_GIT,
  SPACE_PROBE,
};
