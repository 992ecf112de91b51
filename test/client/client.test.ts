// The client against a real `lockstep dev` node: the table API, typed errors, the query builder,
// the session index, one Idempotency-Key per logical write across its retries, and a retry
// through a restart of the node (the call's deadline covers it).
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { connect, ConflictError, DeadlineExceededError, InvalidError, where, type ChangeMessage } from '../../src/client/index.js';
import { useDevServer } from '../support/dev-server.js';

const dev = useDevServer('shop', 'lockstep-client-');

interface Product {
  id?: string;
  name: string;
  category?: string;
  price: number;
  stock: number;
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('client SDK', () => {
  it('reads and writes through the table API, with typed errors and a session index that only grows', async () => {
    const client = await connect({ seeds: [dev.server.base], app: 'shop' });
    try {
      expect(client.nodes().map((node) => [node.url, node.down])).toEqual([[dev.server.base, false]]);
      const products = client.table<Product>('Product');
      expect(await products.get('missing')).toBeUndefined();
      await products.put('c1', { name: 'Saw', category: 'tools', price: 12, stock: 3 });
      const afterPut = client.sessionIndex();
      expect(afterPut).toBeGreaterThan(0);
      await products.put('c2', { name: 'Drill', category: 'tools', price: 80, stock: 1 });
      await products.put('c3', { name: 'Vase', category: 'home', price: 7, stock: 9 });
      await products.patch('c1', { stock: 2 });
      expect(await products.get('c1')).toMatchObject({ name: 'Saw', stock: 2 });
      expect(client.sessionIndex()).toBeGreaterThan(afterPut);
      const built = where<Product>('category').eq('tools').and('price').lt(50).sort('+price').select('id', 'price');
      expect(built.toString()).toBe('category=tools&price=lt=50&sort(+price)&select(id,price)');
      expect(await products.query(built)).toEqual([{ id: 'c1', price: 12 }]);
      expect((await products.query('category=tools&sort(-price)')).map((p) => p.id)).toEqual(['c2', 'c1']);
      // Untyped, an or-group, and a limit with an offset.
      const either = where('category').eq('home').or('price').ge(80).sort('+price').limit(5, 0);
      expect(either.toString()).toBe('(category=home|price=ge=80)&sort(+price)&limit(5)');
      expect((await client.table('Product').query(either)).map((p) => p.id)).toEqual(['c3', 'c2']);
      await expect(products.query('price=zz=1')).rejects.toBeInstanceOf(InvalidError);
      await products.delete('c3');
      expect(await products.get('c3')).toBeUndefined();
      for (const stale of ['stale', 'linearizable'] as const) expect(await products.get('c1', { consistency: stale })).toMatchObject({ stock: 2 });
    } finally {
      client.close();
    }
  });

  it('creates once per call: the key is the call’s, and a conflict is a typed error', async () => {
    const client = await connect({ seeds: [dev.server.base], app: 'shop' });
    try {
      await client.table('Customer').put('u1', { email: 'u1@example.com', name: 'U' });
      await client.table<Product>('Product').put('k1', { name: 'Kite', price: 5, stock: 2 });
      const orders = client.table<{ id?: string; productId: string; customerId: string; quantity: number }>('Order');
      const created = await orders.create({ customerId: 'u1', productId: 'k1', quantity: 2 });
      expect(created.id).toMatch(/.+/);
      expect(created.body).toMatchObject({ total: 10 });
      await expect(orders.create({ customerId: 'u1', productId: 'k1', quantity: 1 })).rejects.toBeInstanceOf(ConflictError);
      expect(await orders.query('productId=k1')).toHaveLength(1);
      expect(await client.table<Product>('Product').get('k1')).toMatchObject({ stock: 0 });
    } finally {
      client.close();
    }
  });

  it('retries a write while its node is down until it is back; without a node it ends at the deadline', async () => {
    const client = await connect({ seeds: [dev.server.base], app: 'shop', deadlineMs: 30_000 });
    try {
      const items = client.table<{ name: string }>('Item');
      await items.put('r1', { name: 'before' });
      let pending: Promise<void> | undefined;
      await dev.restart(async () => {
        pending = items.put('r2', { name: 'while down' });
        await new Promise((resolve) => setTimeout(resolve, 300));
      });
      await pending;
      expect(await items.get('r2')).toMatchObject({ name: 'while down' });
      expect(await items.get('r1')).toMatchObject({ name: 'before' });
      const short = await connect({ seeds: [dev.server.base], app: 'shop', deadlineMs: 600 });
      await dev.restart(async () => {
        await expect(short.table('Item').put('r3', { name: 'x' })).rejects.toBeInstanceOf(DeadlineExceededError);
      });
      short.close();
      expect(await items.get('r3')).toBeUndefined();
    } finally {
      client.close();
    }
  });

  it('a create whose answer is lost is retried with the same Idempotency-Key and applies once', async () => {
    const client = await connect({ seeds: [dev.server.base], app: 'shop' });
    const keys: string[] = [];
    const realFetch = globalThis.fetch;
    try {
      await client.table('Customer').put('c-lost', { email: 'lost@example.com', name: 'Lo' });
      await client.table<Product>('Product').put('p-lost', { name: 'Kettle', price: 30, stock: 10 });
      let dropped = false;
      globalThis.fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
        const response = await realFetch(input, init);
        if (init?.method === 'POST' && String(input).includes('/Order/')) {
          keys.push(new Headers(init.headers).get('idempotency-key') ?? '');
          if (!dropped) {
            dropped = true; // the node applied it; the client never hears back
            await response.body?.cancel();
            throw new TypeError('fetch failed (simulated)');
          }
        }
        return response;
      };
      const created = await client.table('Order').create({ customerId: 'c-lost', productId: 'p-lost', quantity: 2 });
      expect(created.body).toMatchObject({ total: 60 });
    } finally {
      globalThis.fetch = realFetch;
    }
    try {
      expect(keys).toHaveLength(2);
      expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
      expect(keys[1]).toBe(keys[0]);
      expect(await client.table('Order').query('productId=p-lost')).toHaveLength(1);
      expect(await client.table<Product>('Product').get('p-lost')).toMatchObject({ stock: 8 });
    } finally {
      client.close();
    }
  });

  // WebSocket (Node 20 has none of its own: the `ws` package's class) and SSE.
  for (const transport of ['websocket', 'sse'] as const) {
    const webSocket = transport === 'websocket' ? WebSocket : false;
    it(`a subscription receives put and delete events (${transport})`, async () => {
      const client = await connect({ seeds: [dev.server.base], app: 'shop', webSocket });
      try {
        const events: ChangeMessage[] = [];
        const subscription = client.table('Item').subscribe({ since: client.sessionIndex(), onEvent: (event) => events.push(event) });
        await client.table('Item').put(`s1-${transport}`, { name: 'one' });
        await client.table('Item').delete(`s1-${transport}`);
        await until(() => events.filter((event) => event.id === `s1-${transport}`).length >= 2);
        subscription.close();
        expect(events.filter((event) => event.id === `s1-${transport}`).map((event) => event.type)).toEqual(['put', 'delete']);
        expect(events.find((event) => event.id === `s1-${transport}`)?.value).toMatchObject({ name: 'one' });
      } finally {
        client.close();
      }
    });

    it(`a subscription resumes across a restart of its node with no gaps and no duplicates (${transport})`, { timeout: 60_000 }, async () => {
      const reader = await connect({ seeds: [dev.server.base], app: 'shop', webSocket });
      const writer = await connect({ seeds: [dev.server.base], app: 'shop', deadlineMs: 30_000 });
      try {
        await writer.table('Item').put('warm', { name: 'w' });
        const seen: string[] = [];
        const subscription = reader.table('Item').subscribe({
          since: writer.sessionIndex(),
          onEvent: (event) => {
            if (String(event.id).startsWith(`resume-${transport}-`)) seen.push(String(event.id));
          },
        });
        const total = 20;
        for (let n = 0; n < total / 2; n++) await writer.table('Item').put(`resume-${transport}-${n}`, { name: `n${n}` });
        await until(() => seen.length >= total / 2);
        await dev.restart();
        for (let n = total / 2; n < total; n++) await writer.table('Item').put(`resume-${transport}-${n}`, { name: `n${n}` });
        await until(() => seen.length >= total, 20_000);
        await new Promise((resolve) => setTimeout(resolve, 300));
        subscription.close();
        expect(seen).toEqual(Array.from({ length: total }, (_, n) => `resume-${transport}-${n}`));
        process.stdout.write(`client subscription (${transport}): ${total} events across a restart; 0 gaps, 0 duplicates\n`);
      } finally {
        reader.close();
        writer.close();
      }
    });

    it(`a live subscription cut before its first event resumes from where it started (${transport})`, { timeout: 60_000 }, async () => {
      const reader = await connect({ seeds: [dev.server.base], app: 'shop', webSocket });
      const writer = await connect({ seeds: [dev.server.base], app: 'shop', deadlineMs: 30_000 });
      try {
        const seen: string[] = [];
        const subscription = reader.table('Item').subscribe({ onEvent: (event) => seen.push(String(event.id)) });
        await new Promise((resolve) => setTimeout(resolve, 300));
        // Written while the subscription reconnects: a stream that started live from its new
        // node's index would miss them.
        await dev.restart();
        for (let n = 0; n < 5; n++) await writer.table('Item').put(`live-${transport}-${n}`, { name: 'x' });
        await until(() => seen.length >= 5, 20_000);
        subscription.close();
        expect(seen).toEqual(Array.from({ length: 5 }, (_, n) => `live-${transport}-${n}`));
      } finally {
        reader.close();
        writer.close();
      }
    });
  }
});
