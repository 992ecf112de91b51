// Idempotency-Key on REST writes: a retried write applies once and gets its first answer, a key
// reused for another request is refused (422), and the key survives a restart (it is state, in
// the log, not a cache).
import { describe, expect, it } from 'vitest';
import { useDevServer } from '../support/dev-server.js';
import { jsonRequest } from '../support/http-client.js';

const dev = useDevServer('shop', 'lockstep-idempotency-');

async function stockOf(id: string): Promise<number> {
  return ((await (await jsonRequest(`${dev.server.url}/Product/${id}`, 'GET')).json()) as { stock: number }).stock;
}

async function orderCount(): Promise<number> {
  const orders = (await (await jsonRequest(`${dev.server.url}/Order/?productId=p-idem`, 'GET')).json()) as unknown[];
  return orders.length;
}

describe('Idempotency-Key', () => {
  it('a custom POST retried with its key applies once and answers as the first time', async () => {
    expect((await jsonRequest(`${dev.server.url}/Customer/c-idem`, 'PUT', { email: 'i@example.com', name: 'Ida' })).status).toBe(204);
    expect((await jsonRequest(`${dev.server.url}/Product/p-idem`, 'PUT', { name: 'Kettle', price: 30, stock: 10 })).status).toBe(204);
    const order = { customerId: 'c-idem', productId: 'p-idem', quantity: 2 };
    const first = await jsonRequest(`${dev.server.url}/Order/`, 'POST', order, { 'idempotency-key': '"order-1"' });
    expect(first.status).toBe(201);
    const firstBody = await first.text();
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    for (let retry = 0; retry < 3; retry++) {
      const again = await jsonRequest(`${dev.server.url}/Order/`, 'POST', order, { 'idempotency-key': '"order-1"' });
      expect(again.status).toBe(201);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.headers.get('location')).toBe(first.headers.get('location'));
      expect(await again.text()).toBe(firstBody);
      expect(Number(again.headers.get('x-lockstep-index'))).toBeGreaterThanOrEqual(Number(first.headers.get('x-lockstep-index')));
    }
    expect(await stockOf('p-idem')).toBe(8);
    expect(await orderCount()).toBe(1);
    // Concurrent retries race the first attempt's entry: still one order.
    const racing = await Promise.all(Array.from({ length: 8 }, () => jsonRequest(`${dev.server.url}/Order/`, 'POST', order, { 'idempotency-key': 'order-2' })));
    expect(racing.map((answer) => answer.status)).toEqual(Array.from({ length: 8 }, () => 201));
    expect(new Set(await Promise.all(racing.map((answer) => answer.text()))).size).toBe(1);
    expect(await stockOf('p-idem')).toBe(6);
    expect(await orderCount()).toBe(2);
  });

  it('a key reused for another request is 422 and changes nothing; a bad key is 400', async () => {
    const put = await jsonRequest(`${dev.server.url}/Item/k1`, 'PUT', { name: 'a' }, { 'idempotency-key': 'item-k1' });
    expect(put.status).toBe(204);
    const other = await jsonRequest(`${dev.server.url}/Item/k1`, 'PUT', { name: 'b' }, { 'idempotency-key': 'item-k1' });
    expect(other.status).toBe(422);
    expect(await other.json()).toMatchObject({ type: 'https://lockstep.dev/problems/idempotency-key-reused' });
    expect(await (await jsonRequest(`${dev.server.url}/Item/k1`, 'GET')).json()).toMatchObject({ name: 'a' });
    const replay = await jsonRequest(`${dev.server.url}/Item/k1`, 'PUT', { name: 'a' }, { 'idempotency-key': 'item-k1' });
    expect([replay.status, replay.headers.get('etag'), replay.headers.get('idempotent-replayed')]).toEqual([204, put.headers.get('etag'), 'true']);
    for (const bad of ['', '"unterminated', 'x'.repeat(256), 'has space']) {
      const answer = await jsonRequest(`${dev.server.url}/Item/k2`, 'PUT', { name: 'c' }, { 'idempotency-key': bad });
      expect(answer.status, `key '${bad.slice(0, 20)}'`).toBe(400);
    }
    expect((await jsonRequest(`${dev.server.url}/Item/k2`, 'GET')).status).toBe(404);
  });

  it('a write with a key that a replay would refuse is still answered from its record (the retry sees later state)', async () => {
    // The first attempt drains the stock; a retry of it must not be judged against the new state.
    expect((await jsonRequest(`${dev.server.url}/Product/p-last`, 'PUT', { name: 'Last', price: 5, stock: 1 })).status).toBe(204);
    const order = { customerId: 'c-idem', productId: 'p-last', quantity: 1 };
    const first = await jsonRequest(`${dev.server.url}/Order/`, 'POST', order, { 'idempotency-key': 'last-1' });
    expect(first.status).toBe(201);
    const retry = await jsonRequest(`${dev.server.url}/Order/`, 'POST', order, { 'idempotency-key': 'last-1' });
    expect(retry.status).toBe(201);
    const fresh = await jsonRequest(`${dev.server.url}/Order/`, 'POST', order, { 'idempotency-key': 'last-2' });
    expect(fresh.status).toBe(409);
  });

  it('keys are remembered across a restart', async () => {
    const put = await jsonRequest(`${dev.server.url}/Item/r1`, 'PUT', { name: 'before' }, { 'idempotency-key': 'restart-1' });
    expect(put.status).toBe(204);
    await dev.restart();
    const replay = await jsonRequest(`${dev.server.url}/Item/r1`, 'PUT', { name: 'before' }, { 'idempotency-key': 'restart-1' });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.headers.get('etag')).toBe(put.headers.get('etag'));
  });
});
