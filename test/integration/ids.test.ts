// Every accepted id is addressable by its URL; an id that could not be is refused with 400 before
// anything commits, whether it comes from a POST body, a PUT path or app code calling the table API.
import { beforeAll, describe, expect, it } from 'vitest';
import { useDevServer } from '../support/dev-server.js';
import { jsonRequest } from '../support/http-client.js';

const dev = useDevServer('shop', 'lockstep-ids-');

beforeAll(async () => {
  expect((await jsonRequest(`${dev.server.url}/Product/lamp`, 'PUT', { name: 'Lamp', price: 20, stock: 5 })).status).toBe(204);
});

async function postRaw(path: string, body: string | Buffer): Promise<{ status: number; text: string }> {
  const response = await fetch(`${dev.server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : new Uint8Array(body) });
  return { status: response.status, text: await response.text() };
}

async function productIds(): Promise<unknown[]> {
  const products = (await (await fetch(`${dev.server.url}/Product/?limit(1000)`)).json()) as { id: unknown }[];
  return products.map((product) => product.id).sort();
}

describe('record ids', () => {
  it('refuses ids a URL cannot address, before commit', async () => {
    const before = await productIds();
    const product = { name: 'Desk', price: 90, stock: 1 };
    // A number in a String/ID key would be a different key from the URL's string.
    expect((await jsonRequest(`${dev.server.url}/Product/`, 'POST', { ...product, id: 12345 })).status).toBe(400);
    expect((await jsonRequest(`${dev.server.url}/Product/`, 'POST', { ...product, id: -1 })).status).toBe(400);
    // An empty id would be the collection URL.
    expect((await jsonRequest(`${dev.server.url}/Product/`, 'POST', { ...product, id: '' })).status).toBe(400);
    // A lone surrogate cannot be written as UTF-8 and read back.
    const lone = await postRaw('/Product/', '{"id":"\\ud800","name":"Desk","price":90,"stock":1}');
    expect(lone.status).toBe(400);
    expect(lone.text).toMatch(/lone surrogate/);
    expect((await postRaw('/Product/', '{"name":"Desk \\udc00","price":90,"stock":1}')).status).toBe(400);
    // Bytes that are not UTF-8 are refused, not rewritten as U+FFFD.
    expect((await postRaw('/Product/', Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('","price":1,"stock":1}')]))).status).toBe(400);
    expect(await productIds()).toEqual(before);
    expect((await fetch(`${dev.server.url}/Product/12345`)).status).toBe(404);
  });

  it('an accepted id round-trips through its Location, including characters outside the BMP', async () => {
    const created = await jsonRequest(`${dev.server.url}/Product/`, 'POST', { id: 'lamp-🪔 ü', name: 'Oil lamp', price: 5, stock: 2 });
    expect(created.status).toBe(201);
    const location = created.headers.get('location') ?? '';
    expect((await fetch(`${dev.server.base}${location}`)).status).toBe(200);
    expect((await fetch(`${dev.server.base}${location}`, { method: 'DELETE' })).status).toBe(204);
    expect((await fetch(`${dev.server.base}${location}`)).status).toBe(404);
  });

  it('app code passing an unusable id to the table API gets a 400 naming it, not a 500', async () => {
    const order = await jsonRequest(`${dev.server.url}/Order/`, 'POST', { customerId: 'c'.repeat(600), productId: 'lamp', quantity: 1 });
    expect(order.status).toBe(400);
    expect(await order.text()).toMatch(/id/);
    const product = (await (await fetch(`${dev.server.url}/Product/lamp`)).json()) as { stock: number };
    expect(product.stock).toBe(5);
  });
});
