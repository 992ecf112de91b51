// Three (sometimes four) transports on 127.0.0.1 with ephemeral ports, real gRPC over real sockets.
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Transport, TransportError, FaultInjectionDisabledError, type TransportHandlers } from '../../src/cluster/transport.js';
import { batchBytesMax, peerQueueMessagesMax, reconnectDelayMsMax, reconnectJitterRatio, streamBytesInFlightMax } from '../../src/cluster/transport-limits.js';
import type { Message } from '../../src/raft/types.js';

const waitStepMs = 5;

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, waitStepMs));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function message(from: string, to: string, index: number, bytes = 8): Message {
  return {
    type: 'app', from, to, term: 1, logTerm: 1, index, commit: 0, reject: false, rejectHint: 0,
    entries: [{ term: 1, index: index + 1, type: 'normal', data: new Uint8Array(bytes).fill(index & 0xff) }],
  };
}

interface Node {
  readonly id: string;
  readonly transport: Transport;
  /** group -> messages received, in order. */
  readonly received: Map<string, Message[]>;
  readonly unreachable: string[];
  handlers: TransportHandlers;
}

const transports: Transport[] = [];
const netServers: NetServer[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  for (const transport of transports.splice(0)) await transport.stop();
  for (const socket of sockets.splice(0)) socket.destroy();
  for (const server of netServers.splice(0)) await new Promise((resolve) => server.close(resolve));
});

async function startNode(id: string, listenAddress = '127.0.0.1:0', faultInjection = true): Promise<Node> {
  const received = new Map<string, Message[]>();
  const node: Node = {
    id,
    received,
    unreachable: [],
    handlers: {
      onMessages: (group, messages) => {
        const list = received.get(group) ?? [];
        list.push(...messages);
        received.set(group, list);
      },
      onReadIndex: async () => 42,
      onSnapshot: async () => undefined,
    },
    transport: undefined as unknown as Transport,
  };
  // Handlers indirect through `node.handlers` so a test can swap one after start.
  const transport = new Transport({
    nodeId: id,
    listenAddress,
    peers: new Map(),
    faultInjection,
    handlers: {
      onMessages: (group, messages) => node.handlers.onMessages(group, messages),
      onReadIndex: (group, deadlineMs) => node.handlers.onReadIndex(group, deadlineMs),
      onSnapshot: (group, metadata, data, fromNode) => node.handlers.onSnapshot(group, metadata, data, fromNode),
    },
  });
  transport.onUnreachable = (group, peer) => node.unreachable.push(`${group}@${peer}`);
  (node as { transport: Transport }).transport = transport;
  transports.push(transport);
  await transport.start();
  return node;
}

async function cluster(ids: readonly string[]): Promise<Node[]> {
  const nodes = await Promise.all(ids.map((id) => startNode(id)));
  for (const node of nodes) for (const other of nodes) if (other !== node) node.transport.addPeer(other.id, other.transport.boundAddress);
  return nodes;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

const indexes = (messages: readonly Message[] | undefined): number[] => (messages ?? []).map((m) => m.index);
const range = (from: number, count: number): number[] => Array.from({ length: count }, (_, i) => from + i);

describe('Transport: raft messages', () => {
  it('delivers the messages of several groups in order, batched per turn', async () => {
    const [n1, n2, n3] = await cluster(['n1', 'n2', 'n3']);
    const perGroupTurns = 20;
    const perTurn = 25;
    for (let turn = 0; turn < perGroupTurns; turn++) {
      for (const group of ['g1', 'g2', 'g3']) {
        const batch: Message[] = [];
        for (let i = 0; i < perTurn; i++) {
          const index = turn * perTurn + i;
          batch.push(message('n1', 'n2', index), message('n1', 'n3', index));
        }
        n1!.transport.send(group, batch);
      }
      if (turn % 5 === 0) await sleep(1);
    }
    const total = perGroupTurns * perTurn;
    await waitFor(() => ['g1', 'g2', 'g3'].every((g) => n2!.received.get(g)?.length === total && n3!.received.get(g)?.length === total), 5_000, 'all messages');
    for (const node of [n2!, n3!]) {
      for (const group of ['g1', 'g2', 'g3']) expect(indexes(node.received.get(group))).toEqual(range(0, total));
    }
    const sample = n2!.received.get('g2')![7]!;
    expect(sample).toEqual(message('n1', 'n2', 7));
    expect(Object.getPrototypeOf(sample.entries[0]!.data)).toBe(Uint8Array.prototype);
    const counters = n1!.transport.counters();
    expect(counters.messagesSent).toBe(total * 6);
    expect(counters.messagesDropped).toBe(0);
    expect(n2!.transport.counters().bytesReceived).toBeGreaterThan(0);
    expect(n1!.unreachable).toEqual([]);
  });

  it('measures throughput of small messages to one peer', async () => {
    const [n1, n2] = await cluster(['n1', 'n2']);
    n1!.transport.send('warmup', [message('n1', 'n2', 0)]);
    await waitFor(() => n2!.received.has('warmup'), 3_000, 'warm-up message');
    const count = 20_000;
    const perTurn = 500;
    const started = Date.now();
    for (let sent = 0; sent < count; sent += perTurn) {
      n1!.transport.send('g1', range(sent, perTurn).map((i) => message('n1', 'n2', i, 256)));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await waitFor(() => n2!.received.get('g1')?.length === count, 10_000, 'all messages');
    const elapsedMs = Date.now() - started;
    expect(indexes(n2!.received.get('g1'))).toEqual(range(0, count));
    console.log(`${count} raft messages (256 B entries) in ${elapsedMs} ms: ${Math.round((count / elapsedMs) * 1000)} msg/s`);
  });

  it('reports messages for an unknown peer as unreachable', async () => {
    const [n1] = await cluster(['n1', 'n2']);
    n1!.transport.send('g1', [message('n1', 'nobody', 1)]);
    await waitFor(() => n1!.unreachable.length > 0, 1_000, 'unreachable report');
    expect(n1!.unreachable).toEqual(['g1@nobody']);
    expect(n1!.transport.counters().messagesDropped).toBe(1);
  });
});

describe('Transport: ReadIndex', () => {
  it('round-trips, and maps handler errors, timeouts and unknown peers to error codes', async () => {
    const [n1, n2] = await cluster(['n1', 'n2']);
    let seenDeadlineMs = 0;
    n2!.handlers.onReadIndex = async (group, deadlineMs) => {
      seenDeadlineMs = deadlineMs;
      if (group === 'follower') throw new TransportError('failedPrecondition', 'not the leader; leader is n3');
      if (group === 'broken') throw new Error('boom');
      if (group === 'slow') await sleep(2_000);
      return 100 + group.length;
    };
    const before = Date.now();
    expect(await n1!.transport.readIndex('n2', 'g1', 2_000)).toBe(102);
    expect(seenDeadlineMs).toBeGreaterThanOrEqual(before + 1_500);
    expect(seenDeadlineMs).toBeLessThanOrEqual(Date.now() + 2_000);

    const codeOf = async (promise: Promise<unknown>): Promise<string> => promise.then(() => 'resolved', (error: unknown) => (error instanceof TransportError ? error.code : `not a TransportError: ${String(error)}`));
    expect(await codeOf(n1!.transport.readIndex('n2', 'follower', 1_000))).toBe('failedPrecondition');
    await expect(n1!.transport.readIndex('n2', 'follower', 1_000)).rejects.toThrow(/leader is n3/);
    expect(await codeOf(n1!.transport.readIndex('n2', 'broken', 1_000))).toBe('unknown');
    const slowStart = Date.now();
    expect(await codeOf(n1!.transport.readIndex('n2', 'slow', 100))).toBe('deadlineExceeded');
    expect(Date.now() - slowStart).toBeLessThan(1_000);
    expect(await codeOf(n1!.transport.readIndex('nobody', 'g1', 100))).toBe('unavailable');
    expect(await codeOf(n1!.transport.readIndex('n2', 'g1', 0))).toBe('invalidArgument');
    n2!.handlers.onReadIndex = () => new Promise<number>(() => undefined); // never answers
    expect(await codeOf(n1!.transport.readIndex('n2', 'g1', 100))).toBe('deadlineExceeded');
  });

  it('fails fast with unavailable when the peer is down', async () => {
    const n1 = await startNode('n1');
    n1.transport.addPeer('n9', `127.0.0.1:${await freePort()}`);
    const start = Date.now();
    await expect(n1.transport.readIndex('n9', 'g1', 5_000)).rejects.toMatchObject({ code: 'unavailable' });
    expect(Date.now() - start).toBeLessThan(2_000);
  });

  it('rejects calls in flight with cancelled when stopped', async () => {
    const [n1, n2] = await cluster(['n1', 'n2']);
    n2!.handlers.onReadIndex = () => new Promise<number>(() => undefined);
    const pending = n1!.transport.readIndex('n2', 'g1', 10_000);
    await sleep(50);
    await n1!.transport.stop();
    await expect(pending).rejects.toMatchObject({ code: 'cancelled' });
    await expect(n1!.transport.readIndex('n2', 'g1', 1_000)).rejects.toMatchObject({ code: 'cancelled' });
  });
});

describe('Transport: snapshots', () => {
  it('streams a 5 MiB snapshot in CRC-checked chunks and the receiver gets every byte', async () => {
    const [n1, n2] = await cluster(['n1', 'n2']);
    const snapshot = randomBytes(5 * 1024 * 1024);
    const metadata = new TextEncoder().encode('{"index":77}');
    const got: { group: string; metadata: Uint8Array; digest: string; bytes: number; pieces: number }[] = [];
    n2!.handlers.onSnapshot = async (group, meta, data) => {
      const hash = createHash('sha256');
      let bytes = 0;
      let pieces = 0;
      for await (const piece of data) {
        hash.update(piece);
        bytes += piece.byteLength;
        pieces++;
      }
      got.push({ group, metadata: meta, digest: hash.digest('hex'), bytes, pieces });
    };
    // From an async source cut in odd sizes, so chunking does not follow the caller's pieces.
    async function* source(): AsyncGenerator<Uint8Array> {
      const pieceBytes = 100_003;
      for (let start = 0; start < snapshot.byteLength; start += pieceBytes) yield snapshot.subarray(start, start + pieceBytes);
    }
    const started = Date.now();
    await n1!.transport.sendSnapshot('n2', 'g7', metadata, source());
    const elapsedMs = Date.now() - started;
    const expected = createHash('sha256').update(snapshot).digest('hex');
    expect(got).toEqual([{ group: 'g7', metadata, digest: expected, bytes: snapshot.byteLength, pieces: 20 }]);
    // The same from one buffer; and an empty snapshot still carries its metadata.
    await n1!.transport.sendSnapshot('n2', 'g8', metadata, snapshot);
    await n1!.transport.sendSnapshot('n2', 'g9', metadata, new Uint8Array(0));
    expect(got.map((g) => [g.group, g.bytes, g.digest === expected])).toEqual([['g7', snapshot.length, true], ['g8', snapshot.length, true], ['g9', 0, false]]);
    console.log(`5 MiB snapshot over loopback: ${elapsedMs} ms`);
  });

  it('reports a refused snapshot, and a failed transfer can simply be retried', async () => {
    const [n1, n2] = await cluster(['n1', 'n2']);
    let attempts = 0;
    n2!.handlers.onSnapshot = async (_group, _metadata, data) => {
      attempts++;
      let bytes = 0;
      for await (const piece of data) {
        bytes += piece.byteLength;
        if (attempts === 1 && bytes > 300_000) throw new Error('disk full');
      }
    };
    const snapshot = randomBytes(1024 * 1024);
    await expect(n1!.transport.sendSnapshot('n2', 'g1', new Uint8Array([1]), snapshot)).rejects.toMatchObject({ code: 'aborted', message: expect.stringMatching(/disk full/) });
    await n1!.transport.sendSnapshot('n2', 'g1', new Uint8Array([1]), snapshot);
    expect(attempts).toBe(2);
  });
});

describe('Transport: failures', () => {
  it('reconnects to a peer that was down and comes up', async () => {
    const port = await freePort();
    const n1 = await startNode('n1');
    n1.transport.addPeer('n4', `127.0.0.1:${port}`);
    n1.transport.send('g1', [message('n1', 'n4', 0)]);
    await waitFor(() => n1.unreachable.includes('g1@n4'), 3_000, 'unreachable report for the down peer');
    const n4 = await startNode('n4', `127.0.0.1:${port}`);
    let index = 1;
    await waitFor(() => {
      n1.transport.send('g1', [message('n1', 'n4', index++)]);
      return (n4.received.get('g1')?.length ?? 0) > 0;
    }, 10_000, 'delivery after the peer came up');
    expect(n1.transport.counters().reconnects).toBeGreaterThanOrEqual(1);
    // Once connected, nothing more is lost.
    const from = index + 1000;
    n1.transport.send('g2', range(from, 50).map((i) => message('n1', 'n4', i)));
    await waitFor(() => n4.received.get('g2')?.length === 50, 3_000, 'messages after reconnect');
    expect(indexes(n4.received.get('g2'))).toEqual(range(from, 50));
  });

  it('finds a peer that was down for long within the reconnect bound of it coming up', { timeout: 20_000 }, async () => {
    const port = await freePort();
    const n1 = await startNode('n1');
    n1.transport.addPeer('n4', `127.0.0.1:${port}`);
    // Traffic like a leader's heartbeats, for longer than an unbounded backoff would take to
    // grow past several seconds.
    let index = 0;
    const heartbeatIntervalMs = 20;
    const heartbeats = setInterval(() => n1.transport.send('g1', [message('n1', 'n4', index++)]), heartbeatIntervalMs);
    try {
      await sleep(4_000);
      const n4 = await startNode('n4', `127.0.0.1:${port}`);
      const upMs = performance.now();
      await waitFor(() => (n4.received.get('g1')?.length ?? 0) > 0, 5_000, 'delivery after the peer came up');
      const foundMs = performance.now() - upMs;
      console.log(`peer down 4 s found ${Math.round(foundMs)} ms after its server was up (reconnect delay at most ${reconnectDelayMsMax} ms ± ${reconnectJitterRatio * 100}%)`);
      // The channel's next attempt, the handshake, one heartbeat interval, and slack for a busy machine.
      expect(foundMs).toBeLessThan(reconnectDelayMsMax * (1 + reconnectJitterRatio) + heartbeatIntervalMs + 500);
    } finally {
      clearInterval(heartbeats);
    }
  });

  it('a peer that does not read does not delay the others, and its queue stays bounded', async () => {
    const [n1, n2] = await cluster(['n1', 'n2']);
    // Accepts TCP connections and never reads from them: no HTTP/2 handshake, no window.
    const blackhole = createServer((socket) => {
      socket.pause();
      sockets.push(socket);
    });
    netServers.push(blackhole);
    await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
    const address = blackhole.address();
    if (address === null || typeof address === 'string') throw new Error('no port');
    n1!.transport.addPeer('nb', `127.0.0.1:${address.port}`);

    const flood = 30_000;
    for (let turn = 0; turn < 4; turn++) {
      n1!.transport.send('g1', range(turn * (flood / 4), flood / 4).map((i) => message('n1', 'nb', i, 1024)));
      await sleep(1);
    }
    const started = Date.now();
    n1!.transport.send('g1', range(0, 100).map((i) => message('n1', 'n2', i)));
    await waitFor(() => n2!.received.get('g1')?.length === 100, 2_000, 'the healthy peer');
    const latencyMs = Date.now() - started;
    expect(latencyMs).toBeLessThan(500);
    // At most the queue bound plus what gRPC was allowed to hold (in-flight bytes) survives.
    const messageBytes = 1024;
    const heldMessagesMax = peerQueueMessagesMax + (streamBytesInFlightMax + batchBytesMax) / messageBytes;
    expect(n1!.transport.counters().messagesDropped).toBeGreaterThanOrEqual(flood - heldMessagesMax);
    expect(n1!.unreachable).toContain('g1@nb');
    console.log(`healthy peer latency with a blocked peer flooded: ${latencyMs} ms`);
  });

  it('partitions one way: dropTo on the sender, dropFrom on the receiver', async () => {
    const [n1, n2, n3] = await cluster(['n1', 'n2', 'n3']);
    n1!.transport.setPartition({ dropTo: ['n2'], dropFrom: [] });
    n3!.transport.setPartition({ dropTo: [], dropFrom: ['n1'] });
    n1!.transport.send('g1', [message('n1', 'n2', 1), message('n1', 'n3', 1)]);
    n2!.transport.send('g1', [message('n2', 'n1', 2), message('n2', 'n3', 2)]);
    n3!.transport.send('g1', [message('n3', 'n1', 3)]);
    await waitFor(() => n1!.received.get('g1')?.length === 2 && n3!.received.get('g1')?.length === 1, 2_000, 'the open directions');
    await sleep(100);
    expect(n2!.received.get('g1')).toBeUndefined(); // n1 -> n2 dropped at n1
    expect(indexes(n3!.received.get('g1'))).toEqual([2]); // n1 -> n3 dropped at n3
    expect(indexes(n1!.received.get('g1')).sort()).toEqual([2, 3]);
    expect(n1!.transport.counters().messagesDropped).toBe(1);
    expect(n3!.transport.counters().messagesDropped).toBe(1);

    const fast = async (promise: Promise<unknown>): Promise<string> => {
      const start = Date.now();
      const code = await promise.then(() => 'resolved', (error: unknown) => (error instanceof TransportError ? error.code : 'other'));
      return Date.now() - start < 500 ? code : `${code} (slow)`;
    };
    expect(await fast(n1!.transport.readIndex('n2', 'g1', 2_000))).toBe('unavailable');
    expect(await fast(n1!.transport.readIndex('n3', 'g1', 2_000))).toBe('unavailable');
    expect(await fast(n1!.transport.sendSnapshot('n3', 'g1', new Uint8Array(), new Uint8Array(10)))).toBe('unavailable');
    expect(await fast(n2!.transport.readIndex('n1', 'g1', 2_000))).toBe('resolved');
    expect(await fast(n3!.transport.readIndex('n1', 'g1', 2_000))).toBe('resolved');

    n1!.transport.setPartition({ dropTo: [], dropFrom: [] });
    n3!.transport.setPartition({ dropTo: [], dropFrom: [] });
    n1!.transport.send('g2', [message('n1', 'n2', 5), message('n1', 'n3', 5)]);
    await waitFor(() => n2!.received.get('g2')?.length === 1 && n3!.received.get('g2')?.length === 1, 2_000, 'healed');
  });

  it('refuses fault injection unless enabled', async () => {
    const plain = await startNode('p1', '127.0.0.1:0', false);
    expect(() => plain.transport.setPartition({ dropTo: ['x'], dropFrom: [] })).toThrow(FaultInjectionDisabledError);
  });
});
