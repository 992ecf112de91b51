// Optimistic concurrency on a real dev server: read-modify-write resource code that is forced to
// overlap (it sleeps between its read and its write) must never lose an update. apply() rejects a
// write set whose reads changed, and the node reruns the code; the retries metric proves that path ran.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editAppFile, writeApp } from '../support/app-files.js';
import { removeDir, startDevServer, tempDir, type DevServer } from '../support/dev-server.js';
import { jsonRequest, metricValue } from '../support/http-client.js';

/** A 409 means the node gave up after its own reruns; the client may try again (bounded). */
const clientRetriesMax = 20;

const schema = `type Counter @table {
  id: ID @primaryKey
  value: Int!
}
`;

// PATCH /Counter/<id> increments: read, sleep so concurrent requests overlap (or as long as the
// body's delayMs says), write value + 1 and which code wrote it.
const resources = `import { tables } from 'lockstep';

const overlapMs = 5;
const writtenBy = 'code-1';

export class Counter extends tables.Counter {
  async patch(target: { id?: string }, body: { delayMs?: number } | undefined) {
    const id = target.id as string;
    const current = await tables.Counter.get(id);
    await new Promise((resolve) => setTimeout(resolve, body?.delayMs ?? overlapMs));
    const value = ((current?.value as number | undefined) ?? 0) + 1;
    await tables.Counter.put(id, { value, writtenBy });
    return { value };
  }
}
`;

let server: DevServer;
let appDir: string;
let dataDir: string;

beforeAll(async () => {
  appDir = writeApp('counter', { 'schema.graphql': schema, 'resources.ts': resources, 'config.yaml': 'name: counter\n' });
  dataDir = tempDir('lockstep-data-');
  server = await startDevServer(appDir, dataDir);
});

afterAll(async () => {
  await server?.stop();
  removeDir(appDir);
  removeDir(dataDir);
});

interface IncrementStats {
  readonly clientConflicts: number;
}

/** `clients` concurrent loops, each doing `perClient` increments one after another. */
async function increment(id: string, clients: number, perClient: number, body: { delayMs?: number } = {}): Promise<IncrementStats> {
  let clientConflicts = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let n = 0; n < perClient; n++) {
        for (let attempt = 1; ; attempt++) {
          const response = await jsonRequest(`${server.url}/Counter/${id}`, 'PATCH', body);
          const text = await response.text();
          if (response.status === 200) break;
          if (response.status !== 409 || attempt >= clientRetriesMax) throw new Error(`increment answered ${response.status}: ${text}`);
          clientConflicts += 1;
        }
      }
    }),
  );
  return { clientConflicts };
}

async function counterValue(id: string): Promise<number> {
  const response = await jsonRequest(`${server.url}/Counter/${id}`, 'GET');
  expect(response.status).toBe(200);
  return ((await response.json()) as { value: number }).value;
}

async function writeRetries(reason: 'conflict' | 'version'): Promise<number> {
  const metrics = await (await fetch(`${server.base}/metrics`)).text();
  const value = metricValue(metrics, 'lockstep_write_retries_total', { reason });
  return Number.isNaN(value) ? 0 : value;
}

const conflictRetries = (): Promise<number> => writeRetries('conflict');

describe('concurrent read-modify-write through a custom resource', () => {
  it('two overlapping increments both land', async () => {
    expect((await jsonRequest(`${server.url}/Counter/pair`, 'PUT', { value: 0 })).status).toBe(204);
    const before = await conflictRetries();
    // Long enough that both have read before either writes, however slowly the connections open.
    await increment('pair', 2, 1, { delayMs: 200 });
    expect(await counterValue('pair')).toBe(2);
    // Both read value 0 within the same few milliseconds; one of them must have been rerun.
    expect(await conflictRetries()).toBeGreaterThan(before);
  });

  it('8 clients x 25 increments end at exactly 200', async () => {
    expect((await jsonRequest(`${server.url}/Counter/many`, 'PUT', { value: 0 })).status).toBe(204);
    const before = await conflictRetries();
    const started = performance.now();
    const { clientConflicts } = await increment('many', 8, 25);
    const elapsedMs = performance.now() - started;
    expect(await counterValue('many')).toBe(200);
    const retries = (await conflictRetries()) - before;
    expect(retries).toBeGreaterThan(0);
    console.info(`OCC: 200 increments in ${elapsedMs.toFixed(0)} ms, ${retries} conflict reruns, ${clientConflicts} client-visible 409s`);
  });

  it('increments of different counters do not conflict with each other', async () => {
    const ids = Array.from({ length: 8 }, (_unused, n) => `solo${n}`);
    for (const id of ids) expect((await jsonRequest(`${server.url}/Counter/${id}`, 'PUT', { value: 0 })).status).toBe(204);
    const before = await conflictRetries();
    await Promise.all(ids.map((id) => increment(id, 1, 10)));
    for (const id of ids) expect(await counterValue(id)).toBe(10);
    // Each transaction reads only its own counter, so none of them is ever rerun.
    expect(await conflictRetries()).toBe(before);
  });

  it('a transaction that read under the old version is rerun under the new one, never committed by old code', async () => {
    expect((await jsonRequest(`${server.url}/Counter/switch`, 'PUT', { value: 0 })).status).toBe(204);
    const versionRetriesBefore = await writeRetries('version');
    // Reads under version 1, then sleeps well past the activation of version 2 before proposing.
    const slowDelayMs = 2_000;
    const slow = jsonRequest(`${server.url}/Counter/switch`, 'PATCH', { delayMs: slowDelayMs });
    editAppFile(appDir, 'resources.ts', (code) => code.replace("const writtenBy = 'code-1'", "const writtenBy = 'code-2'"));
    const line = await server.waitForOutput(/version 2 active at index (\d+)/, 15_000);
    const activation = Number((/at index (\d+)/.exec(line) as RegExpExecArray)[1]);
    const response = await slow;
    expect(response.status).toBe(200);
    expect(response.headers.get('x-lockstep-version')).toBe('2');
    expect(Number(response.headers.get('x-lockstep-index'))).toBeGreaterThan(activation);
    expect(await response.json()).toEqual({ value: 1 });
    expect(await writeRetries('version')).toBeGreaterThan(versionRetriesBefore);
    const stored = await jsonRequest(`${server.url}/Counter/switch`, 'GET');
    expect(await stored.json()).toMatchObject({ value: 1, writtenBy: 'code-2' });
  });
});
