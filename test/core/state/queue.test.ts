/**
 * The deployment queue on SQLite and PostgreSQL: add, list, due, claim (exactly one of several racing
 * connections wins), finish, cancel (only a queued item), and the note of an item that waits.
 */
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { Queue, type NewQueueItem } from '../../../core/state/queue.js';
import { openStore } from '../../../core/state/store.js';
import { each } from '../../support/backends.js';

const item = (o: Partial<NewQueueItem> = {}): NewQueueItem => ({
  fraise: 'api',
  environment: 'production',
  version: 'abc1234',
  ref: 'main',
  flags: {},
  requestedBy: 'alice@laptop',
  dueAt: 2_000,
  ...o,
});

each('add, list and due: queued items by due time; finished ones only with all', async (b) => {
  let now = 1_000;
  const store = await b.open({ now: () => now });
  const q = new Queue(store);
  const late = await q.add(item({ dueAt: 5_000, version: 'v2' }));
  const early = await q.add(item({ dueAt: 2_000, flags: { force: true } }));
  assert.equal(
    (await q.list()).map((i) => [i.id, i.version, i.status, i.queuedAt, i.flags]),
    [
      [early, 'abc1234', 'queued', 1_000, { force: true }],
      [late, 'v2', 'queued', 1_000, {}],
    ],
  );
  assert.equal(await q.due(1_999), []);
  assert.equal(
    (await q.due(2_000)).map((i) => i.id),
    [early],
  );
  now = 3_000;
  const claimed = await q.claim(early, 'w@h:1');
  assert.equal([claimed?.status, claimed?.claimedBy, claimed?.claimedAt], ['running', 'w@h:1', 3_000]);
  assert.is(await q.claim(early, 'w@h:2'), undefined, 'claimed once only');
  await q.finish(early, { status: 'succeeded', deploymentId: 7 });
  assert.equal(
    (await q.list()).map((i) => i.id),
    [late],
  );
  const all = await q.list({ all: true });
  assert.equal(
    all.map((i) => [i.id, i.status, i.deploymentId, i.finishedAt]),
    [
      [early, 'succeeded', 7, 3_000],
      [late, 'queued', null, null],
    ],
    'newest first',
  );
  await store.close();
});

each('cancel: a queued item only; a running or missing one says why and changes nothing', async (b) => {
  const store = await b.open();
  const q = new Queue(store);
  const a = await q.add(item());
  const r = await q.add(item());
  await q.claim(r, 'w');
  assert.is((await q.cancel(a)).result, 'cancelled');
  assert.is((await q.get(a))?.status, 'cancelled');
  assert.is(await q.claim(a, 'w'), undefined, 'a cancelled item is never claimed');
  assert.is((await q.cancel(r)).result, 'running');
  assert.is((await q.get(r))?.status, 'running');
  assert.is((await q.cancel(999)).result, 'missing');
  await store.close();
});

each('note: set on a queued item, cleared when it is claimed', async (b) => {
  const store = await b.open();
  const q = new Queue(store);
  const id = await q.add(item());
  await q.note(id, 'waits: outside every deploy window');
  assert.is((await q.get(id))?.note, 'waits: outside every deploy window');
  await q.claim(id, 'w');
  assert.is((await q.get(id))?.note, null);
  await store.close();
});

each('ten connections race to claim one item: exactly one wins', async (b) => {
  const location = await b.fresh();
  // opened one after the other (the first one creates the schema), then racing
  const stores = [];
  for (let i = 0; i < 10; i++) stores.push(await openStore(b.options(location)));
  try {
    const id = await new Queue(stores[0]!).add(item({ dueAt: 0 }));
    const wins = await Promise.all(stores.map((s, i) => new Queue(s).claim(id, `worker-${i}`)));
    const winners = wins.filter((w) => w !== undefined);
    assert.is(winners.length, 1);
    assert.is((await new Queue(stores[0]!).get(id))?.claimedBy, winners[0]!.claimedBy);
  } finally {
    await Promise.all(stores.map((s) => s.close()));
  }
});

test.run();
