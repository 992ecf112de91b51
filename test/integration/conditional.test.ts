// Conditional writes follow RFC 9110: If-Match: * holds only for an existing record, and
// If-None-Match: * on a write means create-only; a failing condition is 412 and changes nothing.
import { describe, expect, it } from 'vitest';
import { useDevServer } from '../support/dev-server.js';
import { jsonRequest } from '../support/http-client.js';

const dev = useDevServer('shop', 'lockstep-conditional-');

const item = { name: 'Lamp', price: 20 };

describe('conditional requests', () => {
  it('If-Match: * on a missing record is 412 and creates nothing; on an existing one it holds', async () => {
    expect((await jsonRequest(`${dev.server.url}/Item/c1`, 'PUT', item, { 'if-match': '*' })).status).toBe(412);
    expect((await jsonRequest(`${dev.server.url}/Item/c1`, 'GET')).status).toBe(404);
    expect((await jsonRequest(`${dev.server.url}/Item/c1`, 'PATCH', { price: 1 }, { 'if-match': '*' })).status).toBe(412);
    expect((await jsonRequest(`${dev.server.url}/Item/c1`, 'DELETE', undefined, { 'if-match': '*' })).status).toBe(412);
    expect((await jsonRequest(`${dev.server.url}/Item/c1`, 'PUT', item)).status).toBe(204);
    expect((await jsonRequest(`${dev.server.url}/Item/c1`, 'PUT', { ...item, price: 21 }, { 'if-match': '*' })).status).toBe(204);
    expect(await (await jsonRequest(`${dev.server.url}/Item/c1`, 'GET')).json()).toMatchObject({ price: 21 });
  });

  it('If-None-Match: * on PUT creates only; a second create is 412 and leaves the record as it was', async () => {
    const created = await jsonRequest(`${dev.server.url}/Item/c2`, 'PUT', item, { 'if-none-match': '*' });
    expect(created.status).toBe(204);
    const etag = created.headers.get('etag');
    const again = await jsonRequest(`${dev.server.url}/Item/c2`, 'PUT', { ...item, price: 99 }, { 'if-none-match': '*' });
    expect(again.status).toBe(412);
    expect(again.headers.get('etag')).toBe(etag);
    const read = await jsonRequest(`${dev.server.url}/Item/c2`, 'GET');
    expect([read.headers.get('etag'), (await read.json()).price]).toEqual([etag, 20]);
    // A listed version that is current fails too; another version passes.
    expect((await jsonRequest(`${dev.server.url}/Item/c2`, 'PATCH', { price: 1 }, { 'if-none-match': etag ?? '' })).status).toBe(412);
    expect((await jsonRequest(`${dev.server.url}/Item/c2`, 'PATCH', { price: 2 }, { 'if-none-match': '"1"' })).status).toBe(204);
    // On GET, If-None-Match keeps its cache meaning: 304 when the tag matches.
    const current = (await jsonRequest(`${dev.server.url}/Item/c2`, 'GET')).headers.get('etag') ?? '';
    expect((await jsonRequest(`${dev.server.url}/Item/c2`, 'GET', undefined, { 'if-none-match': current })).status).toBe(304);
  });
});
