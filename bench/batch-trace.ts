/**
 * Timeline of rolling deploys with the SDK: every log line with its time since the deploy started, and
 * the mean per-phase times. How the "batch 4 slower than batch 1" cause was found (issue 13): every host's
 * first health attempt is refused (supervisor with startsecs=0 says "started" before node listens), then a
 * whole retry delay followed. Needs a lab up: `npx tsx bench/batch-trace.ts [hosts] [batch] [retryDelay]`
 * with V=1 for the timeline; reads $FRAISIER_LAB_DIR/env.json (default /tmp/fraisier-bench-lab).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { bareMetal, defineDeploy, http, rolling, type LogEntry } from '../index.js';
const env = JSON.parse(readFileSync(`${process.env['FRAISIER_LAB_DIR'] ?? '/tmp/fraisier-bench-lab'}/env.json`, 'utf8'));
const n = Number(process.argv[2] ?? 12),
  batch = Number(process.argv[3] ?? 4),
  delay = (process.argv[4] ?? '200ms') as '200ms';
const hosts = env.hosts.slice(0, n).map((h: any) => h.name);
const app = defineDeploy({
  name: 'app',
  autorun: false,
  state: { path: join(mkdtempSync(join(tmpdir(), 'tr-')), 's.db') },
  environments: {
    bench: {
      provider: bareMetal({
        hosts,
        appPath: '/srv/app',
        source: { type: 'git', repo: env.appRepo },
        service: { type: 'supervisor', program: 'app' },
        ssh: { configFile: env.sshConfig },
      }),
      strategy: rolling({ batchSize: batch }),
      health: { checks: [http({ url: 'http://localhost:8000/health' })], retries: 20, retryDelay: delay },
    },
  },
});
for (const v of ['v1.0.0', 'v1.1.0', 'v1.0.0']) {
  const t0 = performance.now();
  const lines: string[] = [];
  const r = await app.deploy(
    'bench',
    { version: v },
    { sinks: [(e: LogEntry) => lines.push(`${(performance.now() - t0).toFixed(0).padStart(6)} ${e.target ?? ''} ${e.message}`)], handleSignals: false },
  );
  console.log(`${v} ${r.status} ${(performance.now() - t0).toFixed(0)} ms`);
  if (process.env.V) console.log(lines.join('\n'));
  const ph: Record<string, number> = {};
  for (const t of r.targets) for (const [p, ms] of Object.entries(t.phases)) ph[p] = (ph[p] ?? 0) + ms / r.targets.length;
  console.log(JSON.stringify(ph));
}
