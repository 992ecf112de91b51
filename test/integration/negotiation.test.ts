// The response format is settled before a request has any effect: a write that asks for a format
// its answer cannot take (text/csv for a single record) is refused with 406 and changes nothing,
// whatever endpoint it reaches (a table, or app code that writes several tables).
import { beforeAll, describe, expect, it } from 'vitest';
import { useDevServer } from '../support/dev-server.js';
import { jsonRequest } from '../support/http-client.js';

const dev = useDevServer('shop', 'lockstep-negotiation-');

beforeAll(async () => {
  expect((await jsonRequest(`${dev.server.url}/Product/lamp`, 'PUT', { name: 'Lamp', price: 20, stock: 5, category: 'home' })).status).toBe(204);
  expect((await jsonRequest(`${dev.server.url}/Customer/ada`, 'PUT', { email: 'a@b.c', name: 'Ada' })).status).toBe(204);
});

async function send(method: string, path: string, accept: string, body?: unknown): Promise<number> {
  const response = await fetch(`${dev.server.url}${path}`, {
    method,
    headers: { accept, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  await response.arrayBuffer();
  return response.status;
}

async function state(): Promise<unknown> {
  const products = await (await fetch(`${dev.server.url}/Product/?limit(100)`)).json();
  const orders = await (await fetch(`${dev.server.url}/Order/?limit(100)`)).json();
  const customers = await (await fetch(`${dev.server.url}/Customer/?limit(100)`)).json();
  return { products, orders, customers };
}

describe('content negotiation before any effect', () => {
  for (const accept of ['text/csv', 'text/*', 'text/csv;q=1, application/json;q=0']) {
    it(`refuses writes that ask for ${accept} with 406 and changes nothing`, async () => {
      const before = await state();
      expect(await send('POST', '/Order/', accept, { customerId: 'ada', productId: 'lamp', quantity: 1 })).toBe(406);
      expect(await send('POST', '/Product/', accept, { name: 'Desk', price: 90, stock: 1 })).toBe(406);
      expect(await send('PUT', '/Product/lamp', accept, { name: 'Lamp', price: 1, stock: 1 })).toBe(406);
      expect(await send('PATCH', '/Product/lamp', accept, { stock: 0 })).toBe(406);
      expect(await send('DELETE', '/Customer/ada', accept)).toBe(406);
      expect(await state()).toEqual(before);
    });
  }

  it('still answers a collection GET in CSV, and a record GET asking only for CSV with 406', async () => {
    const csv = await fetch(`${dev.server.url}/Product/?category=home`, { headers: { accept: 'text/csv' } });
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(await csv.text()).toContain('Lamp');
    expect(await send('GET', '/Product/lamp', 'text/csv')).toBe(406);
    // App code answering a single value to a collection-shaped GET: refused, not a 500.
    expect(await send('GET', '/Stats/', 'text/csv')).toBe(406);
  });
});
