// Expiring tables: reads hide a record once its expiration passed, and the sweeper deletes it
// through the log (so every replica and subscriber sees the delete at the same index).
import { afterEach, describe, expect, it } from 'vitest';
import { AppHost } from '../../src/app/app-host.js';
import { bundleHash } from '../../src/app/bundle.js';
import { ExpirySweeper } from '../../src/app/expiry-sweeper.js';
import { Transaction } from '../../src/app/transaction.js';
import type { ChangeEvent } from '../../src/model/change-event.js';
import { removeDir, tempDir } from '../support/dev-server.js';

const files = {
  'schema.graphql': 'type Session @table(expiration: 60) { id: ID @primaryKey\n user: String }',
};

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

async function openHost(): Promise<AppHost> {
  const dir = tempDir('lockstep-expiry-');
  const host = await AppHost.openSingleNode({ name: 'exp', dataDir: dir, sourceDir: dir, retainEntries: 100 });
  cleanups.push(async () => {
    await host.close();
    removeDir(dir);
  });
  const outcome = await host.deploy({ hash: bundleHash(files), files });
  expect(outcome.status).toBe('activated');
  return host;
}

describe('expiration', () => {
  it('hides expired records from reads and deletes them through the log', async () => {
    const host = await openHost();
    const runtime = host.activeRuntime();
    if (runtime === undefined) throw new Error('no active runtime');
    const table = runtime.schema.tables.get('Session');
    if (table === undefined) throw new Error('no Session table');
    const written = Date.now();
    const writer = new Transaction(runtime, written);
    writer.put(table, 's1', { user: 'ada' });
    const proposal = await host.propose({ kind: 'write', version: runtime.version, reads: [], writes: writer.writeOps(), ts: written });
    expect(proposal.result.ok).toBe(true);

    expect(new Transaction(runtime, written + 59_000).get(table, 's1')).toEqual({ id: 's1', user: 'ada' });
    expect(new Transaction(runtime, written + 60_000).get(table, 's1')).toBeUndefined();

    const events: ChangeEvent[] = [];
    host.hub.subscribe({ table: 'Session' }, undefined, { deliver: (message) => events.push(JSON.parse(message) as ChangeEvent) > 0, close: () => undefined });
    const sweeper = new ExpirySweeper(host);
    expect(await sweeper.sweepOnce(written + 59_000)).toBe(0);
    expect(await sweeper.sweepOnce(written + 61_000)).toBe(1);
    expect(runtime.store.table('Session').get('s1')).toBeUndefined();
    expect(events.map((e) => e.type)).toContain('delete');
  });
});
