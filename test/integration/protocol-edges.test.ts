// Protocol edges of a node's HTTP surface: error answers carry the version and index headers,
// a HEAD answer never has a body, and a client that hangs up mid-request is not a server error.
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { useDevServer } from '../support/dev-server.js';
import { metricValue } from '../support/http-client.js';

const dev = useDevServer('shop', 'lockstep-edges-');

/** Sends raw bytes and returns everything the server answered until it closed. */
function raw(request: string, hangUpAfterMs?: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(dev.server.port, '127.0.0.1');
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk.toString('latin1')));
    socket.on('error', (error) => (hangUpAfterMs === undefined ? reject(error) : resolve(answer)));
    socket.on('close', () => resolve(answer));
    socket.write(request);
    if (hangUpAfterMs !== undefined) setTimeout(() => socket.destroy(), hangUpAfterMs);
  });
}

describe('protocol edges', () => {
  it('error answers say which version and applied index they reflect', async () => {
    const missing = await fetch(`${dev.server.url}/Item/missing`);
    expect(missing.status).toBe(404);
    expect(Number(missing.headers.get('x-lockstep-index'))).toBeGreaterThan(0);
    expect(Number(missing.headers.get('x-lockstep-version'))).toBeGreaterThan(0);
    const invalid = await fetch(`${dev.server.url}/Item/x`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{' });
    expect(invalid.status).toBe(400);
    expect(invalid.headers.get('x-lockstep-version')).not.toBeNull();
  });

  it('a HEAD answer, error or not, has headers and no body', async () => {
    for (const path of ['/shop/Item/missing', '/shop/Nothing/', '/nowhere/Item/']) {
      const answer = await raw(`HEAD ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      const [head, body] = answer.split('\r\n\r\n');
      expect(head, path).toMatch(/^HTTP\/1.1 404/);
      expect(body, path).toBe('');
    }
  });

  it('a client that hangs up mid-body is counted as 499, not as a server error', async () => {
    const before = await (await fetch(`${dev.server.base}/metrics`)).text();
    const errorsBefore = metricValue(before, 'lockstep_http_requests_total', { status: '500' });
    await raw(`PUT /shop/Item/abandoned HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"name":`, 100);
    let after = '';
    for (let attempt = 0; attempt < 50; attempt++) {
      after = await (await fetch(`${dev.server.base}/metrics`)).text();
      if (metricValue(after, 'lockstep_http_requests_total', { status: '499' }) > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(metricValue(after, 'lockstep_http_requests_total', { status: '499' })).toBe(1);
    expect(metricValue(after, 'lockstep_http_requests_total', { status: '500' })).toBe(errorsBefore);
    expect(dev.server.output()).not.toMatch(/request failed/);
    expect((await fetch(`${dev.server.url}/Item/abandoned`)).status).toBe(404);
  });

  it('a body over the limit gets a 413 the client can read, on a connection that stays usable', async () => {
    const bodyBytes = 2 * 1024 * 1024;
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(dev.server.port, '127.0.0.1');
      let received = '';
      socket.on('error', reject);
      socket.on('data', (chunk) => {
        received += chunk.toString('latin1');
        // Both answers are in: the 413, then the GET sent after the whole body on the same socket.
        if ((received.match(/HTTP\/1.1 /g) ?? []).length === 2 && received.endsWith('}')) {
          socket.destroy();
          resolve(received);
        }
      });
      socket.write(`PUT /shop/Item/big HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${bodyBytes}\r\n\r\n`);
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let sent = 0;
      const sendMore = (): void => {
        while (sent < bodyBytes) {
          sent += chunk.length;
          if (!socket.write(chunk)) {
            socket.once('drain', sendMore);
            return;
          }
        }
        socket.write('GET /shop/Item/missing HTTP/1.1\r\nHost: x\r\n\r\n');
      };
      sendMore();
    });
    const statuses = [...answer.matchAll(/HTTP\/1.1 (\d{3})/g)].map((match) => match[1]);
    expect(statuses).toEqual(['413', '404']);
  });

  it('CONNECT gets a 405 answer, and an absolute-form request target is served like its path', async () => {
    const connectAnswer = await raw('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    expect(connectAnswer).toMatch(/^HTTP\/1.1 405 /);
    expect(connectAnswer).toMatch(/not a proxy/);
    await fetch(`${dev.server.url}/Item/abs`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"name":"abs","price":1}' });
    const absolute = await raw(`GET http://127.0.0.1:${dev.server.port}/shop/Item/abs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    expect(absolute).toMatch(/^HTTP\/1.1 200 /);
    expect(absolute).toMatch(/"name":"abs"/);
  });
});
