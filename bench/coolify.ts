/**
 * Coolify provider figures, against the simulator (no lab): `npx tsx bench/coolify.ts`.
 *
 * 1. Polling overhead: how long after the simulator's deployment finished the deploy returns (it should
 *    be within one poll_interval, plus the final status read).
 * 2. 20 applications deployed in parallel against a simulator enforcing Coolify's default rate limit
 *    (200 requests a minute): requests made, 429s met (the client paces itself, so none), wall time.
 *
 * Prints the figures; it is not part of `npm run bench` (that one needs the SSH lab).
 */
import { Deployer } from '../core/deployer.js';
import { secret } from '../core/secret.js';
import { openStore } from '../core/state/store.js';
import { coolify } from '../providers/coolify.js';
import { rolling } from '../strategies/rolling.js';
import { startCoolifySim } from '../test/support/coolify-sim.js';

const TOKEN = '1|sim-root-token';

async function pollingOverhead(pollMs: number, runs: number): Promise<number[]> {
  const sim = await startCoolifySim({ app: 'v0' }, { tickMs: 250 });
  const out: number[] = [];
  try {
    const provider = coolify({ url: sim.url, applications: 'app', token: secret(TOKEN), pollInterval: pollMs });
    const deployer = new Deployer({
      fraise: 'bench',
      environment: 'sim',
      provider,
      strategy: rolling(),
      store: await openStore({ path: ':memory:' }),
      sinks: [],
      handleSignals: false,
    });
    for (let i = 1; i <= runs; i++) {
      const r = await deployer.deploy({ version: `v${i}` });
      const returned = Date.now();
      if (r.status !== 'succeeded') throw new Error(`deploy v${i}: ${r.status} ${r.error?.message}`);
      const d = sim.deployments.at(-1)!;
      out.push(returned - d.endedAt!);
    }
  } finally {
    await sim.stop();
  }
  return out;
}

async function parallel(
  apps: number,
  perMinute: number,
): Promise<{ requests: number; limited: number; paced: number; seconds: number; status: string; why: string }> {
  const versions = Object.fromEntries(Array.from({ length: apps }, (_, i) => [`app${i + 1}`, 'v0']));
  const sim = await startCoolifySim(versions, { tickMs: 1000, inProgressPolls: 4, rateLimit: 200 });
  try {
    const provider = coolify({
      url: sim.url,
      applications: Object.keys(versions),
      token: secret(TOKEN),
      pollInterval: '500ms',
      maxRequestsPerMinute: perMinute,
      maxRetries: 10,
    });
    const deployer = new Deployer({
      fraise: 'bench',
      environment: 'sim',
      provider,
      strategy: rolling({ batchSize: apps }),
      store: await openStore({ path: ':memory:' }),
      sinks: [],
      handleSignals: false,
    });
    const started = Date.now();
    const r = await deployer.deploy({ version: 'v1' });
    return {
      requests: sim.requests.length,
      limited: sim.requests.filter((q) => q.status === 429).length,
      paced: provider.stats.paced,
      seconds: Math.round((Date.now() - started) / 100) / 10,
      status: r.status,
      why: r.status === 'succeeded' ? '' : ` (${r.error?.message ?? 'no error recorded'})`,
    };
  } finally {
    await sim.stop();
  }
}

const pollMs = 1000;
const overhead = await pollingOverhead(pollMs, 5);
console.log(`polling overhead (poll_interval ${pollMs} ms, simulator finish → deploy returned), ms: ${overhead.join(', ')}; max ${Math.max(...overhead)}`);
const paced = await parallel(20, 200);
console.log(
  `20 applications in parallel, paced to 200/min: ${paced.status}${paced.why}, ${paced.requests} requests, ${paced.limited} answered 429, ${paced.paced} waited for budget, ${paced.seconds} s`,
);
const unpaced = await parallel(20, 0);
console.log(
  `20 applications in parallel, pacing off:      ${unpaced.status}${unpaced.why}, ${unpaced.requests} requests, ${unpaced.limited} answered 429, ${unpaced.seconds} s`,
);
