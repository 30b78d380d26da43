// Child of bench/fixed-cost.ts: the steps of a one-host deploy's fixed cost, each timed on its own, in a
// fresh node process running the built package (dist/bundle, as `fraisier deploy` does). Prints JSON.
//   node bench/fixed-cost-phases.mjs <fraises.yaml> <state.db> <host> <repo>
const t = {};
const at0 = performance.now(); // time since this process started (node start-up until the first line)
let last = at0;
const mark = (k) => {
  const n = performance.now();
  t[k] = n - last;
  last = n;
};
t['node start-up (to first line)'] = at0;
const [file, statePath, host, repo] = process.argv.slice(2);
const root = new URL('..', import.meta.url);
// the CLI's entry (command list, config loader), then the package (the deploy path), then the config
await import(new URL('dist/bundle/cli.js', root).href);
mark('load the CLI entry (bundle: command list, config loader)');
const F = await import(new URL('dist/bundle/index.js', root).href);
mark('load the package (bundle: the deploy path)');
const config = F.loadConfig(file);
mark('read + validate fraises.yaml (bundled)');
const store = await F.openStore({ path: statePath });
mark('open state store (WAL, quick_check, schema check)');
const locks = new F.Locks(store);
const h = await locks.acquire('app', 'bench', { user: 'bench', host: 'bench', pid: process.pid }, 'bench');
mark('take the lock');
const e = await F.SshExecutor.connect(host, { configFile: config.ssh.configFile });
mark('SSH handshake (1 host)');
const app = '/srv/app';
await e.run(F.bareMetalCommands.preflight(app, true, { type: 'supervisor', program: 'app' }));
mark('preflight round trip (incl. supervisorctl status)');
await e.run(F.bareMetalCommands.current(app), { check: false });
mark('one trivial round trip (readlink)');
await e.run({ ...F.bareMetalCommands.resolveRef(app, repo, 'v1.0.0'), readOnly: true }, { check: false });
mark('resolve the version (git fetch on the host)');
await e.run(F.bareMetalCommands.cleanup(app, 5, ['v1.0.0', 'v1.1.0']));
mark('cleanup round trip');
await h.release();
mark('release the lock');
await e.close();
await store.close();
mark('close SSH + store');
// the integrity check run at every open, alone, on the same (small) state file
const { default: Database } = await import('better-sqlite3');
const db = new Database(statePath, { readonly: true });
const q0 = performance.now();
db.pragma('quick_check(1)');
t['(part of the open) PRAGMA quick_check(1) alone'] = performance.now() - q0;
db.close();
process.stdout.write(JSON.stringify(t) + '\n');
process.exit(0);
