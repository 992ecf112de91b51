// Real-time subscriptions against a real `lockstep dev` process: WebSocket and SSE on collection
// and record paths see committed changes in log order with their index and version, resume with
// `?since=` without gaps or duplicates, get a `reset` when the retained window no longer reaches
// back, and see the `version` event of a version switch in order with the data.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { editAppFile } from '../support/app-files.js';
import { openEventStream, openWebSocket, type ChangeStream, type StreamMessage } from '../support/change-stream.js';
import { copyApp, removeDir, startDevServer, tempDir, type DevServer } from '../support/dev-server.js';
import { jsonRequest } from '../support/http-client.js';
import { sleep, startLoad } from '../support/load.js';

/** Log entries the app keeps for `since` (small, so a test can outrun it). */
const retainEntries = 5;
/** After the expected messages arrived, how long to keep listening for unexpected extra ones. */
const settleMs = 150;

let server: DevServer;
let appDir: string;
let dataDir: string;
const open: ChangeStream[] = [];

beforeAll(async () => {
  appDir = copyApp('shop');
  editAppFile(appDir, 'config.yaml', (config) => config.replace(/retainEntries: \d+/, `retainEntries: ${retainEntries}`));
  dataDir = tempDir('lockstep-data-');
  server = await startDevServer(appDir, dataDir);
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((stream) => stream.close()));
});

afterAll(async () => {
  await server?.stop();
  removeDir(appDir);
  removeDir(dataDir);
});

function wsUrl(path: string): string {
  return `${server.url.replace(/^http/, 'ws')}${path}`;
}

async function ws(path: string): Promise<ChangeStream> {
  const stream = await openWebSocket(wsUrl(path));
  open.push(stream);
  return stream;
}

async function sse(path: string, headers: Record<string, string> = {}): Promise<ChangeStream> {
  const stream = await openEventStream(`${server.url}${path}`, headers);
  open.push(stream);
  return stream;
}

/** Sends a write and returns the log index it was committed at (its ETag). */
async function write(method: string, path: string, body?: unknown): Promise<number> {
  const response = await jsonRequest(`${server.url}${path}`, method, body);
  const text = await response.text();
  if (response.status < 200 || response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  const etag = /^"(\d+)"$/.exec(response.headers.get('etag') ?? '');
  if (etag === null) throw new Error(`${method} ${path} answered without an ETag`);
  return Number(etag[1]);
}

async function appliedIndex(): Promise<number> {
  const status = (await (await fetch(`${server.base}/_status`)).json()) as { apps: { appliedIndex: number }[] };
  return status.apps[0]?.appliedIndex ?? 0;
}

/** The fields a test compares: what changed, where in the log, by which version. */
function summary(message: StreamMessage): string {
  return `${message.type} ${message.table ?? ''}/${message.id ?? ''} @${message.index} v${message.version ?? ''}`;
}

/** Waits for `count` messages, then a little longer, and returns exactly what arrived. */
async function exactly(stream: ChangeStream, count: number): Promise<StreamMessage[]> {
  await stream.waitForCount(count);
  await sleep(settleMs);
  return stream.messages.slice();
}

describe('subscriptions on a dev server', () => {
  it('deliver WebSocket and SSE messages in log order with index and version, filtered by path', async () => {
    const collection = await ws('/Item/');
    const record = await ws('/Item/r1');
    const products = await ws('/Product/');
    const stream = await sse('/Item/');
    expect(collection.headers['x-lockstep-version']).toBe('1');
    expect(Number(collection.headers['x-lockstep-index'])).toBe(await appliedIndex());
    expect(stream.headers['x-lockstep-version']).toBe('1');

    const e1 = await write('PUT', '/Item/r1', { name: 'one', price: 1 });
    const e2 = await write('PUT', '/Item/r2', { name: 'two', price: 2 });
    const e3 = await write('PATCH', '/Item/r1', { price: 3 });
    const e4 = await write('DELETE', '/Item/r2');
    const e5 = await write('PUT', '/Item/r1', { name: 'one again', price: 5 });
    // Concurrent writers: the stream order must be the commit order, whatever the answer order.
    const concurrent = await Promise.all(Array.from({ length: 20 }, (_unused, n) => write('PUT', `/Item/c${n}`, { name: `c${n}`, price: n })));

    const expected = [
      `put Item/r1 @${e1} v1`,
      `put Item/r2 @${e2} v1`,
      `patch Item/r1 @${e3} v1`,
      `delete Item/r2 @${e4} v1`,
      `put Item/r1 @${e5} v1`,
      ...[...concurrent.keys()].sort((a, b) => (concurrent[a] as number) - (concurrent[b] as number)).map((n) => `put Item/c${n} @${concurrent[n]} v1`),
    ];
    const viaWs = await exactly(collection, expected.length);
    expect(viaWs.map(summary)).toEqual(expected);
    expect(viaWs[0]?.value).toMatchObject({ id: 'r1', name: 'one', price: 1 });
    expect(viaWs[2]?.value).toMatchObject({ price: 3 });
    expect(viaWs[4]?.value).toMatchObject({ id: 'r1', name: 'one again', price: 5 });

    const viaSse = await exactly(stream, expected.length);
    expect(viaSse).toEqual(viaWs);
    expect(stream.eventIds.map(Number)).toEqual(viaSse.map((message) => message.index));

    expect((await exactly(record, 3)).map(summary)).toEqual([`put Item/r1 @${e1} v1`, `patch Item/r1 @${e3} v1`, `put Item/r1 @${e5} v1`]);
    // The Product subscriber saw none of the Item writes, but does see its own table.
    const p1 = await write('PUT', '/Product/p1', { name: 'Lamp', price: 20, stock: 1 });
    expect((await exactly(products, 1)).map(summary)).toEqual([`put Product/p1 @${p1} v1`]);
  });

  it('?since= replays exactly the events missed while disconnected, then continues live', async () => {
    const first = await ws('/Item/');
    const last = await write('PUT', '/Item/s0', { name: 's0', price: 0 });
    await first.waitForCount(1);
    await first.close();

    const missed = [await write('PUT', '/Item/s1', { name: 's1', price: 1 }), await write('PATCH', '/Item/s0', { price: 10 }), await write('DELETE', '/Item/s1')];
    expect(missed[2]).toBeLessThanOrEqual(last + retainEntries);
    const resumed = await ws(`/Item/?since=${last}`);
    const resumedSse = await sse('/Item/', { 'last-event-id': String(last) });
    await resumed.waitForCount(3);
    await resumedSse.waitForCount(3);
    const live = await write('PUT', '/Item/s2', { name: 's2', price: 2 });
    const expected = [`put Item/s1 @${missed[0]} v1`, `patch Item/s0 @${missed[1]} v1`, `delete Item/s1 @${missed[2]} v1`, `put Item/s2 @${live} v1`];
    expect((await exactly(resumed, 4)).map(summary)).toEqual(expected);
    expect((await exactly(resumedSse, 4)).map(summary)).toEqual(expected);

    // A record path resumes with only its own record's events.
    const recordResumed = await ws(`/Item/s0?since=${last - 1}`);
    expect((await exactly(recordResumed, 2)).map(summary)).toEqual([`put Item/s0 @${last} v1`, `patch Item/s0 @${missed[1]} v1`]);
  });

  it('a since older than the retained window gets a reset, then the live stream', async () => {
    const tooOld = await appliedIndex();
    for (let n = 0; n < retainEntries * 2; n++) await write('PUT', `/Item/o${n}`, { name: `o${n}`, price: n });
    const current = await appliedIndex();
    const stream = await ws(`/Item/?since=${tooOld}`);
    const [reset] = await stream.waitForCount(1);
    expect(reset).toMatchObject({ type: 'reset', current });
    expect(reset?.index).toBeGreaterThan(tooOld + 1);
    expect(reset?.index).toBeLessThanOrEqual(current);
    const live = await write('PUT', '/Item/after-reset', { name: 'x', price: 1 });
    expect((await exactly(stream, 2)).slice(1).map(summary)).toEqual([`put Item/after-reset @${live} v1`]);

    // Within the window there is no reset: exactly the retained entries after `since`.
    const recent = await ws(`/Item/?since=${live - 2}`);
    expect((await exactly(recent, 2)).map((message) => message.index)).toEqual([live - 1, live]);
    // A malformed since is refused before the upgrade.
    await expect(openWebSocket(wsUrl('/Item/?since=-1'))).rejects.toThrow(/400/);
  });

  it('a version switch reaches every subscriber as a version event, in order with the data', async () => {
    const collection = await ws('/Item/');
    const record = await ws('/Item/v1');
    const stream = await sse('/Item/v1');
    const before = await write('PUT', '/Item/v1', { name: 'before', price: 1 });
    editAppFile(appDir, 'schema.graphql', (schema) => schema.replace(/(type Item @table \{[^}]*)\}/, '$1  color: String\n}'));
    const line = await server.waitForOutput(/version 2 active at index (\d+)/, 15_000);
    const activation = Number((/at index (\d+)/.exec(line) as RegExpExecArray)[1]);
    const after = await write('PUT', '/Item/v1', { name: 'after', price: 2, color: 'blue' });
    const expected = [`put Item/v1 @${before} v1`, `version / @${activation} v2`, `put Item/v1 @${after} v2`];
    for (const subscriber of [collection, record, stream]) {
      const messages = await exactly(subscriber, 3);
      expect(messages.map(summary)).toEqual(expected);
      expect(messages[1]).toMatchObject({ type: 'version', value: 2 });
    }
  });
});

describe('subscriptions under load and across a crash (default retained window)', () => {
  let node: DevServer;
  let nodeApp: string;
  let nodeData: string;

  beforeAll(async () => {
    nodeApp = copyApp('shop');
    nodeData = tempDir('lockstep-data-');
    node = await startDevServer(nodeApp, nodeData);
  });

  afterAll(async () => {
    await node?.stop();
    removeDir(nodeApp);
    removeDir(nodeData);
  });

  async function nodeWrite(path: string, body: unknown): Promise<number> {
    const response = await jsonRequest(`${node.url}${path}`, 'PUT', body);
    await response.arrayBuffer();
    if (response.status !== 204) throw new Error(`PUT ${path}: ${response.status}`);
    return Number((response.headers.get('etag') ?? '').slice(1, -1));
  }

  async function nodeApplied(): Promise<number> {
    const status = (await (await fetch(`${node.base}/_status`)).json()) as { apps: { appliedIndex: number }[] };
    return status.apps[0]?.appliedIndex ?? 0;
  }

  it('subscribers joining mid-load with a resume point get every committed event exactly once, in order', async () => {
    const since = await nodeApplied();
    const committed: number[] = [];
    const load = startLoad({
      clients: 16,
      deadlineMs: 20_000,
      async step(client, sequence) {
        committed.push(await nodeWrite(`/Item/m${client}-${sequence}`, { name: 'm', price: sequence }));
      },
    });
    await sleep(200);
    // Replay (from the store) and live fan-out race here; the hub must hand over without a gap.
    const viaWs = await openWebSocket(`${node.url.replace(/^http/, 'ws')}/Item/?since=${since}`);
    const viaSse = await openEventStream(`${node.url}/Item/`, { 'last-event-id': String(since) });
    open.push(viaWs, viaSse);
    await sleep(400);
    load.stop();
    expect([...(await load.done).values()]).toEqual([]);
    const expected = committed.slice().sort((a, b) => a - b);
    expect(expected.length).toBeGreaterThan(50);
    for (const stream of [viaWs, viaSse]) {
      const messages = await exactly(stream, expected.length);
      expect(messages.map((message) => message.index)).toEqual(expected);
    }
    await Promise.all(open.splice(0).map((stream) => stream.close()));
  });

  it('after SIGKILL and a restart, ?since= resumes from the persisted change window', async () => {
    const last = await nodeWrite('/Item/k0', { name: 'k0', price: 0 });
    const missed = [await nodeWrite('/Item/k1', { name: 'k1', price: 1 }), await nodeWrite('/Item/k2', { name: 'k2', price: 2 })];
    await node.stop('SIGKILL');
    node = await startDevServer(nodeApp, nodeData);
    const resumed = await openWebSocket(`${node.url.replace(/^http/, 'ws')}/Item/?since=${last}`);
    open.push(resumed);
    await resumed.waitForCount(2);
    const live = await nodeWrite('/Item/k3', { name: 'k3', price: 3 });
    expect((await exactly(resumed, 3)).map(summary)).toEqual([`put Item/k1 @${missed[0]} v1`, `put Item/k2 @${missed[1]} v1`, `put Item/k3 @${live} v1`]);
    await Promise.all(open.splice(0).map((stream) => stream.close()));
  });
});
