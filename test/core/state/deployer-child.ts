/**
 * Helper process for takeover.test.ts (not a test file itself): a real Deployer on a real store that
 * holds its deployment in `prepare`.
 * argv: <SQLite file or postgres:// URL> <environment> <lock ttl ms>
 * Prints `reached` once the lock is held and the deployment recorded; `finish` on stdin lets the
 * deployment complete; then prints the result as one JSON line and exits.
 */
import readline from 'node:readline';
import { openStore } from '../../../core/state/store.js';
import { fakeDeployer } from '../../support/fake-deploy.js';

const [location, environment, ttl] = process.argv.slice(2) as [string, string, string];
const store = await openStore(/^postgres(ql)?:\/\//.test(location) ? { url: location } : { path: location });
const held = fakeDeployer({ store, environment, hold: true, lockTtlMs: Number(ttl), sinks: [(e) => void process.stderr.write(`child: ${e.message}\n`)] });
const result = held.deployer.deploy({ version: 'v-child', reason: 'child deploy' });
await held.reached;
process.stdout.write('reached\n');
for await (const line of readline.createInterface({ input: process.stdin })) {
  if (line === 'finish') break;
}
held.release();
process.stdout.write(`${JSON.stringify(await result)}\n`);
await store.close();
