// The REST surface of a real `lockstep dev` process, over real HTTP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyApp, removeDir, startDevServer, tempDir, type DevServer } from '../support/dev-server.js';

let server: DevServer;
let appDir: string;
let dataDir: string;

beforeAll(async () => {
  appDir = copyApp('shop');
  dataDir = tempDir('lockstep-data-');
  server = await startDevServer(appDir, dataDir);
});

afterAll(async () => {
  await server?.stop();
  removeDir(appDir);
  removeDir(dataDir);
});

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  return fetch(`${server.url}${path}`, init);
}

describe('records', () => {
  it('PUT creates, GET reads with ETag and version headers, PATCH merges, DELETE removes', async () => {
    const put = await call('PUT', '/Product/p1', { name: 'Lamp', price: 20, stock: 5, category: 'home' });
    expect(put.status).toBe(204);
    const etag = put.headers.get('etag');
    expect(etag).toMatch(/^"\d+"$/);
    expect(put.headers.get('x-lockstep-version')).toBe('1');

    const get = await call('GET', '/Product/p1');
    expect(get.status).toBe(200);
    expect(get.headers.get('etag')).toBe(etag);
    expect(Number(get.headers.get('x-lockstep-index'))).toBeGreaterThanOrEqual(Number(etag?.slice(1, -1)));
    const record = (await get.json()) as Record<string, unknown>;
    expect(record).toMatchObject({ id: 'p1', name: 'Lamp', price: 20, stock: 5, category: 'home' });
    expect(typeof record.createdAt).toBe('number');
    expect(record.updatedAt).toBe(record.createdAt);

    expect((await call('GET', '/Product/p1', undefined, { 'if-none-match': etag as string })).status).toBe(304);

    const patch = await call('PATCH', '/Product/p1', { stock: 4 });
    expect(patch.status).toBe(204);
    const patched = (await (await call('GET', '/Product/p1')).json()) as Record<string, unknown>;
    expect(patched).toMatchObject({ name: 'Lamp', stock: 4, createdAt: record.createdAt });

    expect((await call('DELETE', '/Product/p1')).status).toBe(204);
    expect((await call('GET', '/Product/p1')).status).toBe(404);
  });

  it('If-Match is compare-and-set: a stale ETag gets 412 and changes nothing', async () => {
    const first = await call('PUT', '/Product/cas', { name: 'A', price: 1, stock: 1 });
    const etag = first.headers.get('etag') as string;
    const second = await call('PUT', '/Product/cas', { name: 'B', price: 1, stock: 1 }, { 'if-match': etag });
    expect(second.status).toBe(204);
    const stale = await call('PUT', '/Product/cas', { name: 'C', price: 1, stock: 1 }, { 'if-match': etag });
    expect(stale.status).toBe(412);
    expect(stale.headers.get('content-type')).toContain('application/problem+json');
    expect(((await (await call('GET', '/Product/cas')).json()) as { name: string }).name).toBe('B');
  });

  it('POST generates a UUID key and answers 201 with Location', async () => {
    const post = await call('POST', '/Customer/', { email: 'a@example.com', name: 'Ada', address: { city: 'Paris' } });
    expect(post.status).toBe(201);
    const location = post.headers.get('location') as string;
    expect(location).toMatch(/^\/shop\/Customer\/[0-9a-f-]{36}$/);
    const created = await fetch(`${server.base}${location}`);
    expect(await created.json()).toMatchObject({ email: 'a@example.com', address: { city: 'Paris' } });
  });
});

describe('bad input changes nothing and never crashes the server', () => {
  it('rejects invalid records with per-field errors', async () => {
    const response = await call('PUT', '/Product/bad', { name: 5, price: 'x', stock: 1.5 });
    expect(response.status).toBe(400);
    const problem = (await response.json()) as { errors: { field: string }[] };
    expect(problem.errors.map((e) => e.field).sort()).toEqual(['name', 'price', 'stock']);
    expect((await call('GET', '/Product/bad')).status).toBe(404);
  });

  it('answers malformed requests with clear 4xx', async () => {
    expect((await call('PUT', '/Product/x', '{"name": ')).status).toBe(400);
    expect((await call('PUT', '/Product/x', 'a,b', { 'content-type': 'text/plain' })).status).toBe(415);
    expect((await call('PUT', '/Product/x', 'x'.repeat(2 * 1024 * 1024))).status).toBe(413);
    expect((await call('GET', '/Nope/1')).status).toBe(404);
    expect((await fetch(`${server.base}/nope/Product/1`)).status).toBe(404);
    const notAllowed = await call('POST', '/Product/p1', {});
    expect(notAllowed.status).toBe(405);
    expect(notAllowed.headers.get('allow')).toContain('PUT');
    expect((await call('GET', '/Product/?price=gt=')).status).toBe(400);
    expect((await call('GET', '/Product/?name=Lamp')).status).toBe(400); // not indexed
    expect((await call('GET', `/Product/${'x'.repeat(2000)}`)).status).toBe(400);
    expect((await call('GET', '/Product/%E0%A4%A')).status).toBe(400);
    expect((await call('GET', '/Product/p1', undefined, { 'x-lockstep-consistency': 'eventual' })).status).toBe(400);
    expect((await fetch(`${server.base}/_health`)).status).toBe(200);
  });
});

describe('queries', () => {
  beforeAll(async () => {
    for (let i = 0; i < 20; i++) {
      const response = await call('PUT', `/Item/q${String(i).padStart(2, '0')}`, { name: `item ${i}`, price: i });
      expect(response.status).toBe(204);
    }
  });

  it('answers range, sort, limit and select from indexes', async () => {
    const response = await call('GET', '/Item/?price=ge=5&price=lt=9&sort(-price)&select(id,price)');
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual([
      { id: 'q08', price: 8 },
      { id: 'q07', price: 7 },
      { id: 'q06', price: 6 },
      { id: 'q05', price: 5 },
    ]);
    const limited = (await (await call('GET', '/Item/?price=gt=10&limit(2)')).json()) as { price: number }[];
    expect(limited.map((r) => r.price)).toEqual([11, 12]);
    const either = (await (await call('GET', '/Item/?(price=1|price=3)&select(price)')).json()) as { price: number }[];
    expect(either.map((r) => r.price).sort()).toEqual([1, 3]);
  });

  it('serves CSV, CBOR and MessagePack by Accept', async () => {
    const csv = await call('GET', '/Item/?price=lt=2&select(id,price)', undefined, { accept: 'text/csv' });
    expect(csv.headers.get('content-type')).toContain('text/csv');
    expect((await csv.text()).trim().split(/\r?\n/)).toEqual(['id,price', 'q00,0', 'q01,1']);
    const cbor = await call('GET', '/Item/q01', undefined, { accept: 'application/cbor' });
    expect(cbor.headers.get('content-type')).toBe('application/cbor');
    const msgpack = await call('GET', '/Item/q01', undefined, { accept: 'application/x-msgpack' });
    expect(msgpack.headers.get('content-type')).toContain('msgpack');
  });
});

describe('DELETE on a collection', () => {
  it('deletes the records a filter matches in one write, and refuses without a filter', async () => {
    for (let i = 0; i < 6; i++) expect((await call('PUT', `/Item/d${i}`, { name: `doomed ${i}`, price: 100 + i })).status).toBe(204);
    const count = async (): Promise<number> => ((await (await call('GET', '/Item/?price=ge=100')).json()) as unknown[]).length;
    expect(await count()).toBe(6);
    // No filter, a filter no index can answer, a malformed one: refused, nothing deleted.
    const unfiltered = await call('DELETE', '/Item/');
    expect(unfiltered.status).toBe(400);
    expect(((await unfiltered.json()) as { detail: string }).detail).toMatch(/needs a filter/);
    expect((await call('DELETE', '/Item/?name=doomed%200')).status).toBe(400);
    expect((await call('DELETE', '/Item/?price=gt=')).status).toBe(400);
    expect(await count()).toBe(6);
    const before = Number((await call('GET', '/Item/d0')).headers.get('x-lockstep-index'));
    const deleted = await call('DELETE', '/Item/?price=ge=103&select(name)');
    expect(deleted.status).toBe(200);
    expect(await deleted.json()).toEqual({ deleted: 3 });
    // One log entry for the three records: the next index after the read above.
    expect(Number(deleted.headers.get('x-lockstep-index'))).toBe(before + 1);
    expect(await count()).toBe(3);
    expect((await call('GET', '/Item/d3')).status).toBe(404);
    expect((await call('GET', '/Item/d2')).status).toBe(200);
    const none = await call('DELETE', '/Item/?price=ge=1000');
    expect(await none.json()).toEqual({ deleted: 0 });
    const options = await call('OPTIONS', '/Item/');
    expect(options.headers.get('allow')).toBe('OPTIONS, GET, HEAD, POST, DELETE');
  });
});

describe('custom resources', () => {
  it('a multi-table transaction reserves stock and records the order atomically', async () => {
    await call('PUT', '/Product/widget', { name: 'Widget', price: 2.5, stock: 3 });
    await call('PUT', '/Customer/c1', { email: 'c1@example.com', name: 'C One' });
    const order = await call('POST', '/Order/', { customerId: 'c1', productId: 'widget', quantity: 2 });
    expect(order.status).toBe(201);
    expect(await order.json()).toMatchObject({ total: 5 });
    expect(((await (await call('GET', '/Product/widget')).json()) as { stock: number }).stock).toBe(1);
    const tooMany = await call('POST', '/Order/', { customerId: 'c1', productId: 'widget', quantity: 2 });
    expect(tooMany.status).toBe(409);
    expect(((await (await call('GET', '/Product/widget')).json()) as { stock: number }).stock).toBe(1);
    const orders = (await (await call('GET', '/Order/?customerId=c1')).json()) as unknown[];
    expect(orders).toHaveLength(1);
  });

  it('serves a plain Resource endpoint', async () => {
    const stats = await call('GET', '/Stats/');
    expect(stats.status).toBe(200);
    expect(await stats.json()).toHaveProperty('products');
  });
});

describe('node endpoints', () => {
  it('reports status and Prometheus metrics', async () => {
    const status = (await (await fetch(`${server.base}/_status`)).json()) as { apps: { name: string; activeVersion: number }[] };
    expect(status.apps[0]).toMatchObject({ name: 'shop', activeVersion: 1 });
    const metrics = await (await fetch(`${server.base}/metrics`)).text();
    expect(metrics).toContain('lockstep_http_requests_total');
    expect(metrics).toContain('lockstep_log_applied_index');
    expect(metrics).toContain('lockstep_lmdb_data_file_bytes');
  });
});
