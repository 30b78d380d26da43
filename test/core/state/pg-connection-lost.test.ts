/**
 * A PostgreSQL connection the server ends while the store holds it between two statements (a server
 * restart, `pg_terminate_backend`, a failover). pg-pool lends a client with no 'error' listener of its
 * own, and pg emits the server's "terminating connection" as an 'error' event when no statement is
 * running: unhandled, it ended the whole process (seen in CI: deployer-postgres-restart.test.ts, when the
 * restart fell between two statements). Now only that transaction fails, and the store goes on with a new
 * connection. Runs against the test server of test/support/postgres.ts.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { sql } from 'kysely';
import { openStore } from '../../../core/state/store.js';
import { freshDatabase, pgQuery } from '../../support/postgres.js';

test('the server ends a connection a transaction holds between two statements: the process goes on, that transaction fails, the next call works', async () => {
  const url = await freshDatabase('lost');
  const store = await openStore({ url });
  try {
    const err = await store.db
      .transaction()
      .execute(async (trx) => {
        const [row] = (await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx)).rows;
        // another connection ends this one, as a restart or an administrator does
        await pgQuery(url, `select pg_terminate_backend(${Number(row!.pid)})`);
        // the server's message arrives while this transaction runs no statement
        await new Promise((r) => setTimeout(r, 500));
        await sql`select 1`.execute(trx);
      })
      .then(
        () => null,
        (e: unknown) => e,
      );
    assert.instance(err, Error, 'the transaction whose connection was ended fails');
    // the store goes on, on a new connection
    assert.equal(await store.history({ fraise: 'app' }), []);
  } finally {
    await store.close();
  }
});

test.run();
