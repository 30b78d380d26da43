/**
 * The Coolify simulator itself: its answers are checked against Coolify's OpenAPI spec
 * (../shared/contracts/coolify-openapi.json, v4.3.10) wherever the contract (COOLIFY.md, read from
 * Coolify's source) does not document a difference; each difference allowed here is one the contract
 * lists. Also its rules: method rules by version, token abilities, the rate limit and the queue limit.
 */
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startCoolifySim, type CoolifySim } from '../support/coolify-sim.js';

const SPEC_PATH = new URL('../../../../shared/contracts/coolify-openapi.json', import.meta.url);
const SPEC_FALLBACK = '/work/shared/contracts/coolify-openapi.json';
const specFile = existsSync(SPEC_PATH) ? SPEC_PATH : existsSync(SPEC_FALLBACK) ? SPEC_FALLBACK : null;

type Schema = { $ref?: string; type?: string; nullable?: boolean; properties?: Record<string, Schema>; items?: Schema; enum?: unknown[] };

/**
 * Differences between the spec and Coolify's code that the contract documents, as `schema.property`:
 * fields the code returns that the spec leaves out or types differently.
 */
const DOCUMENTED = new Set([
  // COOLIFY.md "Reading deployment status": the example object, from the code (keys sorted, nulls)
  'ApplicationDeploymentQueue.build_server_id',
  'ApplicationDeploymentQueue.finished_at',
  'ApplicationDeploymentQueue.horizon_job_id',
  'ApplicationDeploymentQueue.horizon_job_worker',
  'ApplicationDeploymentQueue.current_process_id:null',
  'ApplicationDeploymentQueue.commit_message:null',
  'ApplicationDeploymentQueue.git_type:null',
  // COOLIFY.md "Reading and updating an application": build_pack is `dockerimage` for image apps
  'Application.build_pack:dockerimage',
]);

function check(
  spec: { components: { schemas: Record<string, Schema> } },
  schema: Schema,
  value: unknown,
  where: string,
  name: string,
  problems: string[],
): void {
  if (schema.$ref) {
    const ref = schema.$ref.split('/').pop()!;
    check(spec, spec.components.schemas[ref]!, value, where, ref, problems);
    return;
  }
  if (value === null) {
    if (!schema.nullable && !DOCUMENTED.has(`${name}:null`)) problems.push(`${where}: null, spec says ${schema.type} (not nullable)`);
    return;
  }
  const t = schema.type;
  const ok =
    t === undefined ||
    (t === 'integer' && Number.isInteger(value)) ||
    (t === 'number' && typeof value === 'number') ||
    (t === 'string' && typeof value === 'string') ||
    (t === 'boolean' && typeof value === 'boolean') ||
    (t === 'array' && Array.isArray(value)) ||
    (t === 'object' && typeof value === 'object' && !Array.isArray(value));
  if (!ok) problems.push(`${where}: ${JSON.stringify(value)} is not ${t}`);
  if (schema.enum && !schema.enum.includes(value) && !DOCUMENTED.has(`${name}:${String(value)}`))
    problems.push(`${where}: ${JSON.stringify(value)} not in ${JSON.stringify(schema.enum)}`);
  if (t === 'array' && schema.items && Array.isArray(value)) {
    for (const [i, v] of value.entries()) check(spec, schema.items, v, `${where}[${i}]`, name, problems);
  }
  if (schema.properties && value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) {
      const p = schema.properties[k];
      if (!p) {
        if (!DOCUMENTED.has(`${name}.${k}`)) problems.push(`${where}.${k}: not in the spec's ${name}`);
        continue;
      }
      check(spec, p, v, `${where}.${k}`, `${name}.${k}`, problems);
    }
  }
}

/** The response schema of `method path` for `status`, from the spec. */
function responseSchema(spec: any, path: string, method: string, status: number): Schema {
  const r = spec.paths[path][method].responses[String(status)];
  const resolved = r.$ref ? spec.components.responses[r.$ref.split('/').pop()] : r;
  const content = resolved.content;
  return (content['application/json'] ?? content['text/html']).schema;
}

const sims: CoolifySim[] = [];
test.after.each(async () => {
  while (sims.length) await sims.pop()!.stop();
});

async function sim(options: Parameters<typeof startCoolifySim>[1] = {}) {
  const s = await startCoolifySim({ 'app-a': 'v1' }, options);
  sims.push(s);
  return s;
}

async function call(s: CoolifySim, method: string, path: string, body?: unknown, token = '1|sim-root-token') {
  const res = await fetch(`${s.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: unknown = text;
  try {
    json = JSON.parse(text);
  } catch {
    // plain text
  }
  return { status: res.status, json, text, headers: res.headers };
}

test('answers match the OpenAPI spec, except where the contract documents the code differs', async () => {
  if (!specFile) throw new Error('the spec coolify-openapi.json is not found in ../shared/contracts');
  const spec = JSON.parse(readFileSync(specFile, 'utf8'));
  const s = await sim();
  const problems: string[] = [];
  const app = await call(s, 'GET', '/applications/app-a');
  check(spec, responseSchema(spec, '/applications/{uuid}', 'get', 200), app.json, 'GET /applications/{uuid}', '', problems);
  const patch = await call(s, 'PATCH', '/applications/app-a', { git_commit_sha: 'v2' });
  assert.equal(patch.json, { uuid: 'app-a' });
  const dep = await call(s, 'POST', '/deploy?uuid=app-a');
  check(spec, responseSchema(spec, '/deploy', 'post', 200), dep.json, 'POST /deploy', '', problems);
  const uuid = (dep.json as { deployments: { deployment_uuid: string }[] }).deployments[0]!.deployment_uuid;
  const one = await call(s, 'GET', `/deployments/${uuid}`);
  check(spec, responseSchema(spec, '/deployments/{uuid}', 'get', 200), one.json, 'GET /deployments/{uuid}', '', problems);
  assert.type((one.json as { application_id: unknown }).application_id, 'string', 'application_id is a string');
  assert.type((one.json as { logs: unknown }).logs, 'string', 'logs is a JSON-encoded string (root token)');
  // documented difference: {count, deployments}, items are ApplicationDeploymentQueue (the spec says an array of Application)
  const list = await call(s, 'GET', '/deployments/applications/app-a?skip=0&take=10');
  const l = list.json as { count: number; deployments: unknown[] };
  assert.is(l.count, 1);
  check(
    spec,
    { type: 'array', items: { $ref: '#/components/schemas/ApplicationDeploymentQueue' } },
    l.deployments,
    'GET /deployments/applications/{uuid} .deployments',
    '',
    problems,
  );
  const cancel = await call(s, 'POST', `/deployments/${uuid}/cancel`);
  check(spec, responseSchema(spec, '/deployments/{uuid}/cancel', 'post', 200), cancel.json, 'POST cancel', '', problems);
  assert.is((cancel.json as { status: string }).status, 'cancelled-by-user');
  const again = await call(s, 'POST', `/deployments/${uuid}/cancel`);
  assert.is(again.status, 400);
  check(spec, responseSchema(spec, '/deployments/{uuid}/cancel', 'post', 400), again.json, 'POST cancel (400)', '', problems);
  const rb = await call(s, 'POST', '/applications/app-a/rollback', { commit: 'v1' });
  check(spec, responseSchema(spec, '/applications/{uuid}/rollback', 'post', 200), rb.json, 'POST rollback', '', problems);
  const v = await call(s, 'GET', '/version');
  assert.is(v.text, '4.3.10');
  assert.match(v.headers.get('content-type') ?? '', /text\/html/);
  for (const [res, where] of [
    [await call(s, 'GET', '/applications/nope'), '404'],
    [await call(s, 'GET', '/applications/app-a', undefined, 'bad'), '401'],
  ] as const) {
    check(spec, responseSchema(spec, '/applications/{uuid}', 'get', Number(where)), res.json, `${where} body`, '', problems);
    assert.is(res.status, Number(where));
  }
  assert.equal(problems, []);
});

test('v4.2+ method rule: GET /deploy is 405 with Allow: POST; beta.474 accepts GET and POST, and has no /rollback', async () => {
  const s = await sim();
  const g = await call(s, 'GET', '/deploy?uuid=app-a');
  assert.is(g.status, 405);
  assert.is(g.headers.get('allow'), 'POST');
  assert.equal(g.json, { message: 'This endpoint has changed to a POST request.' });
  const beta = await sim({ version: '4.0.0-beta.474' });
  assert.is((await call(beta, 'GET', '/deploy?uuid=app-a')).status, 200);
  assert.is((await call(beta, 'POST', '/deploy?uuid=app-a&force=true')).status, 200);
  assert.is((await call(beta, 'POST', '/applications/app-a/rollback', { commit: 'v1' })).status, 404);
  assert.is((await call(beta, 'GET', '/version')).text, '4.0.0-beta.474');
  // before v4.2 any non-empty force, "false" included, forced a rebuild
  await call(beta, 'POST', '/deploy?uuid=app-a&force=false');
  assert.is(beta.deployments.at(-1)!.force_rebuild, true);
  await call(s, 'POST', '/deploy?uuid=app-a&force=false');
  assert.is(s.deployments.at(-1)!.force_rebuild, false);
});

test('token abilities: read-only cannot PATCH or deploy (403 naming the ability); no token is 401', async () => {
  const s = await sim({ tokens: { '2|reader': ['read'] } });
  assert.is((await call(s, 'GET', '/applications/app-a', undefined, '2|reader')).status, 200);
  const p = await call(s, 'PATCH', '/applications/app-a', { git_commit_sha: 'v2' }, '2|reader');
  assert.is(p.status, 403);
  assert.equal(p.json, { message: 'Missing required permissions: write' });
  const d = await call(s, 'POST', '/deploy?uuid=app-a', undefined, '2|reader');
  assert.equal(d.json, { message: 'Missing required permissions: deploy' });
  const one = await call(s, 'GET', '/deployments/applications/app-a', undefined, '2|reader');
  assert.is(one.status, 200);
  assert.equal(await fetch(`${s.url}/api/v1/version`).then((r) => r.status), 401);
});

test('PATCH validation: unknown fields and a bad git_commit_sha are 422; deployments move queued → in_progress → finished as polled', async () => {
  const s = await sim();
  const bad = await call(s, 'PATCH', '/applications/app-a', { commit: 'v2' });
  assert.is(bad.status, 422);
  assert.equal(bad.json, { message: 'Validation failed.', errors: { commit: ['This field is not allowed.'] } });
  assert.is((await call(s, 'PATCH', '/applications/app-a', { git_commit_sha: '-x' })).status, 422);
  await call(s, 'PATCH', '/applications/app-a', { git_commit_sha: 'v2' });
  const uuid = ((await call(s, 'POST', '/deploy', { uuid: 'app-a' })).json as { deployments: { deployment_uuid: string }[] }).deployments[0]!.deployment_uuid;
  const seen: string[] = [];
  for (let i = 0; i < 5; i++) seen.push(((await call(s, 'GET', `/deployments/${uuid}`)).json as { status: string }).status);
  assert.equal(seen, ['queued', 'in_progress', 'in_progress', 'finished', 'finished']);
  assert.is(s.apps.get('app-a')!.running, 'v2');
  // the same commit again while one is active: skipped, with a uuid that was never stored
  await call(s, 'PATCH', '/applications/app-a', { git_commit_sha: 'v3' });
  await call(s, 'POST', '/deploy?uuid=app-a');
  const dup = (await call(s, 'POST', '/deploy?uuid=app-a')).json as { deployments: { message: string; deployment_uuid: string }[] };
  assert.is(dup.deployments[0]!.message, 'Deployment already queued for this commit.');
  assert.is((await call(s, 'GET', `/deployments/${dup.deployments[0]!.deployment_uuid}`)).status, 404);
});

test('tickMs: deployments move on a timer, polled or not (queued 1 tick, in_progress 2, then finished)', async () => {
  let t = 1_000_000;
  const s = await sim({ tickMs: 1000, now: () => t });
  const uuid = ((await call(s, 'POST', '/deploy?uuid=app-a')).json as { deployments: { deployment_uuid: string }[] }).deployments[0]!.deployment_uuid;
  const status = async () => ((await call(s, 'GET', `/deployments/${uuid}`)).json as { status: string }).status;
  assert.is(await status(), 'queued');
  assert.is(await status(), 'queued', 'polling alone does not move it');
  t += 1000;
  assert.is(await status(), 'in_progress');
  t += 5000;
  // read through another endpoint first: the timer moved it all the same
  await call(s, 'GET', '/applications/app-a');
  assert.is(s.deployments[0]!.status, 'finished');
  assert.is(s.deployments[0]!.endedAt, 1_000_000 + 3000);
  assert.is(await status(), 'finished');
});

test('rate limit (200 a minute by default, here 5) and queue limit both answer 429 with Retry-After', async () => {
  const s = await sim({ rateLimit: 5 });
  for (let i = 0; i < 5; i++) assert.is((await call(s, 'GET', '/version')).status, 200);
  const r = await call(s, 'GET', '/version');
  assert.is(r.status, 429);
  assert.ok(Number(r.headers.get('retry-after')) > 0);
  const q = await sim({ queueLimit: 1 });
  q.addApp('app-b', 'v1');
  assert.is((await call(q, 'POST', '/deploy?uuid=app-a')).status, 200);
  const full = await call(q, 'POST', '/deploy?uuid=app-b');
  assert.is(full.status, 429);
  assert.is(full.headers.get('retry-after'), '60');
  assert.equal(full.json, { message: 'Deployment queue is full. Please wait for existing deployments to complete.' });
});

test.run();
