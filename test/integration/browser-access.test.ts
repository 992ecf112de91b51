// A page of another origin can use a node: CORS preflights are answered (before any credential
// check: a preflight carries none), answers expose the headers a client needs, credentials are
// never allowed (so no ambient cookie or Basic auth rides along), and a WebSocket that offers
// the `lockstep` subprotocol gets it selected.
import { describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { useDevServer } from '../support/dev-server.js';
import { jsonRequest } from '../support/http-client.js';

const dev = useDevServer('shop', 'lockstep-browser-access-');
const origin = 'https://app.example.com';

describe('browser access', () => {
  it('answers a CORS preflight with the methods and headers the client sends', async () => {
    const answer = await fetch(`${dev.server.url}/Item/x`, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'authorization, idempotency-key, x-lockstep-min-index' },
    });
    expect(answer.status).toBe(204);
    expect(answer.headers.get('access-control-allow-origin')).toBe('*');
    expect(answer.headers.get('access-control-allow-methods')).toContain('PUT');
    const allowed = (answer.headers.get('access-control-allow-headers') ?? '').toLowerCase();
    for (const header of ['authorization', 'idempotency-key', 'x-lockstep-min-index', 'x-lockstep-consistency', 'if-match']) expect(allowed).toContain(header);
    expect(answer.headers.get('access-control-allow-credentials')).toBeNull();
    // A plain OPTIONS (no preflight) still answers Allow, as before.
    const plain = await fetch(`${dev.server.url}/Item/x`, { method: 'OPTIONS' });
    expect([plain.status, plain.headers.get('allow')]).toEqual([204, 'OPTIONS, GET, HEAD, PUT, PATCH, DELETE']);
  });

  it('exposes the session and version headers on answers and errors of a cross-origin request', async () => {
    const put = await jsonRequest(`${dev.server.url}/Item/b1`, 'PUT', { name: 'b' }, { origin });
    expect(put.status).toBe(204);
    expect(put.headers.get('access-control-allow-origin')).toBe('*');
    const exposed = (put.headers.get('access-control-expose-headers') ?? '').toLowerCase();
    for (const header of ['etag', 'location', 'x-lockstep-index', 'x-lockstep-version', 'idempotent-replayed']) expect(exposed).toContain(header);
    const missing = await jsonRequest(`${dev.server.url}/Item/none`, 'GET', undefined, { origin });
    expect([missing.status, missing.headers.get('access-control-allow-origin')]).toEqual([404, '*']);
    // Same-origin requests (no Origin) get no CORS headers.
    expect((await jsonRequest(`${dev.server.url}/Item/b1`, 'GET')).headers.get('access-control-allow-origin')).toBeNull();
  });

  it('selects the lockstep WebSocket subprotocol, never the bearer one, and then says where the stream starts', async () => {
    const applied = Number((await jsonRequest(`${dev.server.url}/Item/none`, 'GET')).headers.get('x-lockstep-index'));
    const opened = await new Promise<{ protocol: string; first: string }>((resolve, reject) => {
      const socket = new WebSocket(`${dev.server.url.replace('http', 'ws')}/Item/`, ['lockstep', 'lockstep.bearer.lst_x_y']);
      socket.once('message', (data: Buffer) => {
        resolve({ protocol: socket.protocol, first: data.toString() });
        socket.close();
      });
      socket.once('error', reject);
    });
    expect(opened.protocol).toBe('lockstep');
    expect(JSON.parse(opened.first)).toEqual({ type: 'subscribed', index: applied });
    // A plain WebSocket client (no subprotocol) gets events only, as before.
    const plain = new WebSocket(`${dev.server.url.replace('http', 'ws')}/Item/`);
    const firstPlain = new Promise<string>((resolve) => plain.once('message', (data: Buffer) => resolve(data.toString())));
    await new Promise((resolve) => plain.once('open', resolve));
    await jsonRequest(`${dev.server.url}/Item/ws1`, 'PUT', { name: 'w' });
    expect(JSON.parse(await firstPlain)).toMatchObject({ type: 'put', id: 'ws1' });
    plain.close();
  });
});
