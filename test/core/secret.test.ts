/**
 * Secrets are redacted at every exit point (bug 8): errors when they are made, the human formatter,
 * the JSON writer and the store writer.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FraisierError, asFraisierError, formatError } from '../../core/errors.js';
import { formatHistory, formatResult, formatResultError, formatStatus, toJson } from '../../core/report.js';
import { REDACTED, redact, redactedJson, registerSecret, secret } from '../../core/secret.js';
import { openStore } from '../../core/state/store.js';
import type { DeployResult } from '../../core/types.js';

const TOKEN = 'tok-unit-51f0c3a9';
const QUOTED = 'pw"with\\quote-unit';
registerSecret(TOKEN);
registerSecret(QUOTED);

test('a FraisierError is redacted when it is made: message and hint', () => {
  const e = new FraisierError('E_COMMAND', `hook failed: exited with status 1: token is ${TOKEN}`, { hint: `retry with ${TOKEN}` });
  assert.is(e.message, `hook failed: exited with status 1: token is ${REDACTED}`);
  assert.is(e.hint, `retry with ${REDACTED}`);
  assert.not.ok(JSON.stringify(e.toJSON()).includes(TOKEN));
  const wrapped = asFraisierError(new Error(`connect failed for https://deploy:${TOKEN}@git/x`));
  assert.not.ok(wrapped.message.includes(TOKEN));
});

test('formatError redacts any error, not only FraisierErrors', () => {
  assert.is(formatError(new Error(`boom ${TOKEN}`)), `error: boom ${REDACTED}`);
  assert.not.ok(formatError(`postgres://u:pw-unit-x@db/x`).includes('pw-unit-x'));
});

test('a secret registered after an error was made is still hidden by the formatters', () => {
  const late = 'late-secret-unit-77';
  const result: DeployResult = {
    id: 1,
    fraise: 'api',
    environment: 'production',
    kind: 'deploy',
    status: 'rolled_back',
    fromVersion: 'v1',
    toVersion: 'v2',
    durationMs: 1200,
    targets: [{ name: 'h1', status: 'rolled_back', fromVersion: 'v1', toVersion: late, phases: {}, error: `restart failed: ${late}` }],
    error: { code: 'E_COMMAND', message: `restart failed on h1: ${late}` },
    dryRun: false,
  };
  registerSecret(late);
  for (const text of [formatResult(result), formatResultError(result.error!), toJson(result, 2), redactedJson(result)]) {
    assert.not.ok(text.includes(late), text);
    assert.ok(text.includes(REDACTED), text);
  }
  const status = formatStatus({
    fraise: 'api',
    environment: 'production',
    version: 'v1',
    lock: null,
    targets: [{ name: 'h1', current: null, releases: [], error: `cannot connect: ${late}` }],
    liveError: `nginx said ${late}`,
  } as unknown as Parameters<typeof formatStatus>[0]);
  assert.not.ok(status.includes(late), status);
  const history = formatHistory([
    {
      id: 1,
      fraise: 'api',
      environment: 'production',
      kind: 'deploy',
      strategy: 'rolling',
      fromVersion: null,
      toVersion: 'v1',
      user: 'u',
      host: 'h',
      status: 'failed',
      startedAt: 0,
      finishedAt: 1,
      durationMs: 1,
      error: late,
    },
  ]);
  assert.not.ok(history.includes(late));
});

test('the JSON writer redacts values, so a secret JSON would escape is hidden too', () => {
  const raw = JSON.stringify({ error: `said ${QUOTED}` });
  assert.not.ok(raw.includes(QUOTED)); // JSON escapes it ...
  assert.not.ok(redact(raw).includes(REDACTED)); // ... so redacting the JSON text would miss it
  const out = toJson({ error: `said ${QUOTED}`, nested: [{ reason: TOKEN }] });
  assert.is(out, `{"error":"said ${REDACTED}","nested":[{"reason":"${REDACTED}"}]}`);
});

test('a Secret value is registered: its text is redacted wherever it appears', () => {
  const s = secret('wrapped-secret-unit-9', 'X');
  assert.is(String(s), REDACTED);
  assert.is(redact('echo wrapped-secret-unit-9'), `echo ${REDACTED}`);
});

test('the store writer redacts: deployment error, target reason and events never hold the secret', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fraisier-secret-'));
  const file = path.join(dir, 'state.db');
  const store = await openStore({ path: file });
  const id = await store.recordDeployment({
    fraise: 'api',
    environment: 'production',
    kind: 'deploy',
    strategy: 'rolling',
    fromVersion: null,
    toVersion: 'v1',
    user: 'u',
    host: 'h',
  });
  await store.recordEvent(id, { level: 'error', target: 'h1', message: `hook said ${TOKEN}` });
  await store.recordTarget(id, { target: 'h1', fromVersion: null, toVersion: 'v1', status: 'failed', phases: {}, error: `restart printed ${TOKEN}` });
  await store.finishDeployment(id, { status: 'failed', error: `error: https://deploy:pw-store-unit@git/x and ${TOKEN}` });
  const d = await store.deployment(id);
  await store.close();
  assert.is(d!.error, `error: https://deploy:${REDACTED}@git/x and ${REDACTED}`);
  assert.is(d!.targets[0]!.error, `restart printed ${REDACTED}`);
  assert.is(d!.events[0]!.message, `hook said ${REDACTED}`);
  for (const f of fs.readdirSync(dir)) {
    const bytes = fs.readFileSync(path.join(dir, f));
    assert.not.ok(bytes.includes(TOKEN), `${f} holds the secret`);
    assert.not.ok(bytes.includes('pw-store-unit'), `${f} holds the URL password`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test.run();
