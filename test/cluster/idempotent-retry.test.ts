// The same POST retried across a leader change applies once. Two ways a client comes to retry:
// its node answered, then the leader died (the retry goes to a new leader, which must recognise
// the key); and its node answered 503 because the leader stopped mid-request, so the outcome is
// unknown (the first attempt may still commit when the old leader comes back). Either way the
// order exists once and the stock went down once, on every replica. Real `lockstep node`
// processes, the shop example's Order POST (it decrements stock in the same transaction).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/client/index.js';
import { Cluster, pollUntil, sleep, type ClusterNode } from '../support/cluster.js';

const requestTimeoutMs = 20_000;

async function send(node: ClusterNode, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; text: string; headers: Headers }> {
  try {
    const response = await fetch(`${node.base}/shop/${path}`, {
      method,
      headers: { 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(requestTimeoutMs),
    });
    return { status: response.status, text: await response.text(), headers: response.headers };
  } catch (error) {
    return { status: 0, text: String(error), headers: new Headers() };
  }
}

/** Retries the keyed POST through `nodes` in turn until one answers 201 (bounded). */
async function postUntilCreated(nodes: readonly ClusterNode[], order: unknown, key: string): Promise<{ status: number; text: string; headers: Headers }[]> {
  const answers: { status: number; text: string; headers: Headers }[] = [];
  const deadline = Date.now() + 30_000;
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    const answer = await send(nodes[attempt % nodes.length] as ClusterNode, 'POST', 'Order/', order, { 'idempotency-key': key });
    answers.push(answer);
    if (answer.status === 201) return answers;
    expect([0, 503], `attempt ${attempt}: ${answer.text}`).toContain(answer.status);
    await sleep(200);
  }
  throw new Error(`the POST with key ${key} was not created within 30 s: ${answers.map((a) => a.status).join(', ')}`);
}

/** Every node's view, linearizable: the product's stock and how many orders name it. */
async function stateOn(node: ClusterNode, productId: string): Promise<{ stock: number; orders: number }> {
  const linear = { 'x-lockstep-consistency': 'linearizable' };
  const product = await send(node, 'GET', `Product/${productId}`, undefined, linear);
  const orders = await send(node, 'GET', `Order/?productId=${productId}`, undefined, linear);
  return { stock: (JSON.parse(product.text) as { stock: number }).stock, orders: (JSON.parse(orders.text) as unknown[]).length };
}

describe('an idempotent POST across a leader change', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await Cluster.start({ size: 3, idPrefix: 'k' });
  }, 60_000);
  afterAll(async () => {
    await cluster?.close();
  });

  /** Starts the nodes an earlier test killed, and waits until all three serve. */
  async function startStopped(): Promise<void> {
    const running = cluster.running();
    for (const node of ['k1', 'k2', 'k3'].map((id) => cluster.node(id))) if (!running.includes(node)) await node.start();
    await cluster.waitReady();
  }

  async function stock(productId: string): Promise<void> {
    const leader = await cluster.waitForLeader();
    expect((await send(leader, 'PUT', 'Customer/c1', { email: 'c1@example.com', name: 'C One' })).status).toBe(204);
    expect((await send(leader, 'PUT', `Product/${productId}`, { name: productId, price: 10, stock: 100 })).status).toBe(204);
  }

  it('answered, then the leader is killed: the retry on the new leader applies nothing', { timeout: 120_000 }, async () => {
    await stock('p-kill');
    const order = { customerId: 'c1', productId: 'p-kill', quantity: 3 };
    const leader = await cluster.waitForLeader();
    const first = await send(leader, 'POST', 'Order/', order, { 'idempotency-key': 'kill-1' });
    expect(first.status).toBe(201);
    await leader.kill();
    const survivors = cluster.running();
    await cluster.waitForLeader(survivors);
    const answers = await postUntilCreated(survivors, order, 'kill-1');
    const last = answers[answers.length - 1] as { text: string; headers: Headers };
    expect(last.headers.get('idempotent-replayed')).toBe('true');
    expect(last.text).toBe(first.text);
    expect(last.headers.get('location')).toBe(first.headers.get('location'));
    for (const node of survivors) expect(await stateOn(node, 'p-kill')).toEqual({ stock: 97, orders: 1 });
    await leader.start();
    await cluster.waitReady();
    await pollUntil(async () => ((await stateOn(leader, 'p-kill')).orders === 1 ? true : undefined), 30_000, 'the restarted node caught up');
    expect(await stateOn(leader, 'p-kill')).toEqual({ stock: 97, orders: 1 });
  });

  it('503 with the leader stopped mid-request, retried until created: applied once on every replica', { timeout: 120_000 }, async () => {
    await stock('p-pause');
    const order = { customerId: 'c1', productId: 'p-pause', quantity: 5 };
    const leader = await cluster.waitForLeader();
    const followers = cluster.running().filter((node) => node !== leader);
    leader.pause();
    try {
      // The follower forwards the proposal to a leader that cannot answer: unknown outcome.
      const unknown = await send(followers[0] as ClusterNode, 'POST', 'Order/', order, { 'idempotency-key': 'pause-1' });
      expect(unknown.status, unknown.text).toBe(503);
      await cluster.waitForLeader(followers);
      await postUntilCreated(followers, order, 'pause-1');
      // A second, concurrent round of retries through both followers: still once.
      const racing = await Promise.all(followers.map((node) => send(node, 'POST', 'Order/', order, { 'idempotency-key': 'pause-1' })));
      expect(racing.map((answer) => answer.status)).toEqual([201, 201]);
    } finally {
      leader.resume();
    }
    // The old leader comes back with whatever it had appended; the log keeps one order.
    await cluster.waitReady();
    for (const node of cluster.running()) {
      await pollUntil(async () => ((await stateOn(node, 'p-pause')).stock <= 95 ? true : undefined), 30_000, `${node.id} caught up`);
      expect(await stateOn(node, 'p-pause'), node.id).toEqual({ stock: 95, orders: 1 });
    }
  });

  it('the client SDK fails over when its node is killed under load: every acknowledged write is there, and reads are never older than them', { timeout: 120_000 }, async () => {
    await startStopped();
    const client = await connect({ seeds: cluster.running().map((node) => node.base), app: 'shop', deadlineMs: 30_000 });
    try {
      const counters = client.table<{ id?: string; name: string }>('Item');
      const used = client.nodes()[0]?.url;
      const victim = cluster.running().find((node) => node.base === used) as ClusterNode;
      let written = 0;
      let violations = 0;
      const writer = (async () => {
        for (let i = 0; i < 60; i++) {
          await counters.put(`sdk-${i}`, { name: `value ${i}` });
          written++;
          // Read-your-writes: the record just written is there, whichever node answers.
          const read = await counters.get(`sdk-${i}`);
          if (read?.name !== `value ${i}`) violations++;
        }
      })();
      await pollUntil(() => (written >= 15 ? true : undefined), 30_000, '15 writes before the kill');
      await victim.kill();
      await writer;
      expect(violations).toBe(0);
      const all = await counters.query('id=sw=sdk-', { consistency: 'linearizable' });
      expect(all.map((record) => record.id).sort()).toEqual(Array.from({ length: 60 }, (_, i) => `sdk-${i}`).sort());
      process.stdout.write(`client failover: 60 writes, 60 read-your-writes checks across a killed node; ${violations} violations\n`);
    } finally {
      client.close();
    }
  });

  it('a node that hangs (SIGSTOP) costs the client one attempt, not its whole deadline', { timeout: 120_000 }, async () => {
    await startStopped();
    const client = await connect({ seeds: cluster.running().map((node) => node.base), app: 'shop', deadlineMs: 30_000, attemptTimeoutMs: 1_000 });
    const hung = cluster.running().find((node) => node.base === client.nodes()[0]?.url) as ClusterNode;
    try {
      hung.pause();
      const started = performance.now();
      await client.table('Item').put('hung-1', { name: 'past a hung node' });
      // One attempt's timeout, then a new leader (if the hung node led) and the write.
      expect(performance.now() - started).toBeLessThan(8_000);
      expect(await client.table('Item').get('hung-1', { consistency: 'linearizable' })).toMatchObject({ name: 'past a hung node' });
    } finally {
      hung.resume();
      client.close();
    }
  });
});
