// Durability of acknowledged writes across a crash (SIGKILL) and a graceful stop (SIGTERM) in the
// middle of a concurrent write load, against real `lockstep dev` processes on real LMDB files.
// A write counts as acknowledged when its 2xx response arrived; each must survive the restart with
// the acknowledged value. Writes that never got an answer may or may not be there, but never torn.
import { afterEach, describe, expect, it } from 'vitest';
import { editAppFile, writeApp } from '../support/app-files.js';
import { copyApp, removeDir, startDevServer, tempDir, type DevServer } from '../support/dev-server.js';
import { jsonRequest } from '../support/http-client.js';
import { sleep, startLoad } from '../support/load.js';

/** Concurrent writers during the crash. */
const writerCount = 32;
/** How long the load runs before the signal (long enough for many group commits). */
const loadBeforeSignalMs = 1_500;
/** Upper bound on the whole load phase, whatever happens to the server. */
const loadDeadlineMs = 15_000;
/** Concurrent readers verifying acknowledged writes after the restart. */
const verifierCount = 32;

interface Acknowledged {
  readonly name: string;
  readonly price: number;
  readonly etag: number;
}

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

function track(server: DevServer): DevServer {
  cleanup.push(async () => void (await server.stop('SIGKILL')));
  return server;
}

function etagIndex(header: string | null): number {
  const match = /^"(\d+)"$/.exec(header ?? '');
  if (match === null) throw new Error(`expected an ETag like "12", got ${header}`);
  return Number(match[1]);
}

/** Every acknowledged write is readable with its value and an ETag at least as new; every
 *  unanswered one is either absent or exactly what was sent. Returns the number checked. */
async function verify(server: DevServer, acknowledged: Map<string, Acknowledged>, unanswered: Map<string, Omit<Acknowledged, 'etag'>>): Promise<void> {
  const keys = [...acknowledged.keys(), ...unanswered.keys()];
  const failures: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: verifierCount }, async () => {
      while (next < keys.length) {
        const key = keys[next++] as string;
        const response = await jsonRequest(`${server.url}/Item/${key}`, 'GET');
        const acked = acknowledged.get(key);
        if (response.status === 404 && acked === undefined) {
          await response.body?.cancel();
          continue;
        }
        if (response.status !== 200) {
          failures.push(`${key}: status ${response.status}${acked === undefined ? '' : ' (acknowledged)'}`);
          await response.body?.cancel();
          continue;
        }
        const record = (await response.json()) as { name?: unknown; price?: unknown };
        const sent = acked ?? unanswered.get(key);
        if (record.name !== sent?.name || record.price !== sent?.price) {
          failures.push(`${key}: stored ${JSON.stringify(record)}, sent ${JSON.stringify(sent)}`);
        }
        if (acked !== undefined && etagIndex(response.headers.get('etag')) < acked.etag) {
          failures.push(`${key}: ETag ${response.headers.get('etag')} older than the acknowledged "${acked.etag}"`);
        }
      }
    }),
  );
  expect(failures.slice(0, 20)).toEqual([]);
}

describe('a write load interrupted by a signal', () => {
  it('SIGKILL mid-load loses no acknowledged write', async () => {
    const appDir = copyApp('shop');
    const dataDir = tempDir('lockstep-data-');
    cleanup.push(() => removeDir(appDir), () => removeDir(dataDir));
    const server = track(await startDevServer(appDir, dataDir));

    const acknowledged = new Map<string, Acknowledged>();
    const unanswered = new Map<string, Omit<Acknowledged, 'etag'>>();
    let otherStatuses = 0;
    const load = startLoad({
      clients: writerCount,
      deadlineMs: loadDeadlineMs,
      async step(client, sequence) {
        const key = `k${client}-${sequence}`;
        const sent = { name: `value of ${key}`, price: client * 100_000 + sequence };
        unanswered.set(key, sent);
        const response = await jsonRequest(`${server.url}/Item/${key}`, 'PUT', sent);
        unanswered.delete(key);
        if (response.status >= 200 && response.status < 300) {
          acknowledged.set(key, { ...sent, etag: etagIndex(response.headers.get('etag')) });
        } else {
          otherStatuses += 1;
        }
        await response.body?.cancel();
      },
    });
    await sleep(loadBeforeSignalMs);
    const ackedBeforeKill = acknowledged.size;
    await server.stop('SIGKILL');
    expect(server.process.signalCode).toBe('SIGKILL');
    const errors = await load.done;
    // Every client ends on a connection error once the process is gone (not on the deadline).
    expect(errors.size).toBe(writerCount);
    expect(otherStatuses).toBe(0);
    expect(ackedBeforeKill).toBeGreaterThan(writerCount);

    console.info(`SIGKILL: ${acknowledged.size} writes acknowledged (${ackedBeforeKill} before the kill), ${unanswered.size} unanswered`);
    const restarted = track(await startDevServer(appDir, dataDir));
    const status = (await (await fetch(`${restarted.base}/_status`)).json()) as { apps: { appliedIndex: number }[] };
    const newestAck = Math.max(...[...acknowledged.values()].map((ack) => ack.etag));
    expect(status.apps[0]?.appliedIndex).toBeGreaterThanOrEqual(newestAck);
    await verify(restarted, acknowledged, unanswered);
  });

  it('SIGTERM mid-load lets in-flight requests finish, exits 0 and keeps every answered write', async () => {
    // Item.put waits `delayMs` first, so some requests are certainly in flight at the signal.
    const appDir = writeApp('slow', {
      'schema.graphql': 'type Item @table {\n  id: ID @primaryKey\n  name: String\n  price: Float @indexed\n  delayMs: Int\n}\n',
      'resources.ts': [
        "import { tables } from 'lockstep';",
        'export class Item extends tables.Item {',
        '  async put(target: unknown, body: { delayMs?: number }) {',
        '    if (typeof body?.delayMs === "number") await new Promise((resolve) => setTimeout(resolve, body.delayMs));',
        '    return super.put(target as never, body);',
        '  }',
        '}',
        '',
      ].join('\n'),
    });
    const dataDir = tempDir('lockstep-data-');
    cleanup.push(() => removeDir(appDir), () => removeDir(dataDir));
    const server = track(await startDevServer(appDir, dataDir));

    const slowCount = 8;
    // Long enough that all of them reached the server before the signal even on a loaded machine.
    const slowDelayMs = 1_500;
    const slow = Array.from({ length: slowCount }, async (_unused, n) => {
      const sent = { name: `slow ${n}`, price: n, delayMs: slowDelayMs };
      const response = await jsonRequest(`${server.url}/Item/slow${n}`, 'PUT', sent);
      return { key: `slow${n}`, sent, status: response.status, etag: response.headers.get('etag') };
    });
    const acknowledged = new Map<string, Acknowledged>();
    const unanswered = new Map<string, Omit<Acknowledged, 'etag'>>();
    const statuses = new Map<number, number>();
    const load = startLoad({
      clients: writerCount / 2,
      deadlineMs: loadDeadlineMs,
      async step(client, sequence) {
        const key = `t${client}-${sequence}`;
        const sent = { name: `value of ${key}`, price: sequence };
        unanswered.set(key, sent);
        const response = await jsonRequest(`${server.url}/Item/${key}`, 'PUT', sent);
        unanswered.delete(key);
        statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
        if (response.status >= 200 && response.status < 300) acknowledged.set(key, { ...sent, etag: etagIndex(response.headers.get('etag')) });
        await response.body?.cancel();
      },
    });
    // The slow requests have been received and are sleeping inside their resource code.
    await sleep(slowDelayMs / 3);
    const exitCode = await server.stop('SIGTERM');
    const slowResults = await Promise.all(slow);
    const loadErrors = await load.done;
    expect(exitCode).toBe(0);
    expect(slowResults.map((result) => result.status)).toEqual(Array(slowCount).fill(204));
    for (const result of slowResults) acknowledged.set(result.key, { name: result.sent.name, price: result.sent.price, etag: etagIndex(result.etag) });
    // Requests the server answered were answered properly: no 5xx while shutting down.
    expect([...statuses.keys()].filter((status) => status >= 300)).toEqual([]);

    const errorKinds = [...loadErrors.values()].map((error) => String((error as { cause?: { code?: string; message?: string } }).cause?.code ?? (error as { cause?: { message?: string } }).cause?.message ?? error));
    console.info(`SIGTERM: ${acknowledged.size} writes acknowledged, ${unanswered.size} unanswered (${[...new Set(errorKinds)].join(', ')}), statuses ${JSON.stringify([...statuses])}`);
    const restarted = track(await startDevServer(appDir, dataDir));
    await verify(restarted, acknowledged, unanswered);
  });

  it('SIGKILL during a version deploy: the restart serves one consistent version and the edit takes effect', async () => {
    // Delays after the edit that land before the Stage, between Stage and Activate, and after it
    // (the watcher debounces 150 ms; compiling and the index backfill take a few tens more).
    for (const killAfterMs of [50, 170, 300]) {
      const appDir = copyApp('shop');
      const dataDir = tempDir('lockstep-data-');
      cleanup.push(() => removeDir(appDir), () => removeDir(dataDir));
      const server = track(await startDevServer(appDir, dataDir));
      const etag = etagIndex((await jsonRequest(`${server.url}/Item/red`, 'PUT', { name: 'r', price: 1, color: 'red' })).headers.get('etag'));
      editAppFile(appDir, 'schema.graphql', (schema) => schema.replace(/(type Item @table \{[^}]*)\}/, '$1  color: String @indexed\n}'));
      await sleep(killAfterMs);
      await server.stop('SIGKILL');

      const restarted = track(await startDevServer(appDir, dataDir));
      const status = (await (await fetch(`${restarted.base}/_status`)).json()) as { apps: { activeVersion: number; lastVersion: number }[] };
      const { activeVersion, lastVersion } = status.apps[0] as { activeVersion: number; lastVersion: number };
      // Version 2 was activated before the kill, or staged and never activated (then it stays
      // unused and the restart deploys the edit as version 3), or never staged.
      expect([2, 3]).toContain(activeVersion);
      expect(lastVersion).toBe(activeVersion);
      const red = await jsonRequest(`${restarted.url}/Item/?color=red`, 'GET');
      expect(red.status).toBe(200);
      expect(red.headers.get('x-lockstep-version')).toBe(String(activeVersion));
      expect(((await red.json()) as { id: string }[]).map((record) => record.id)).toEqual(['red']);
      const record = await jsonRequest(`${restarted.url}/Item/red`, 'GET');
      expect(etagIndex(record.headers.get('etag'))).toBe(etag);
      await restarted.stop();
    }
  });
});
