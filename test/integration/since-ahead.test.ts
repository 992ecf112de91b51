// A resume point beyond what this node has applied is refused (503, Retry-After) on WebSocket and
// SSE alike, instead of being accepted silently and waiting for a future that may never come here.
import WebSocket from 'ws';
import { describe, expect, it } from 'vitest';
import { useDevServer } from '../support/dev-server.js';

const dev = useDevServer('shop', 'lockstep-since-');

function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('open', () => {
      ws.close();
      resolve(101);
    });
    ws.once('error', reject);
  });
}

describe('since beyond the applied index', () => {
  it('is refused with 503 on WebSocket and SSE; since at the applied index is accepted', async () => {
    const status = (await (await fetch(`${dev.server.base}/_status`)).json()) as { apps: { appliedIndex: number }[] };
    const applied = status.apps[0]?.appliedIndex ?? 0;
    const wsBase = dev.server.url.replace('http://', 'ws://');
    expect(await upgradeStatus(`${wsBase}/Item/?since=${applied + 1000}`)).toBe(503);
    const sse = await fetch(`${dev.server.url}/Item/?since=${applied + 1000}`, { headers: { accept: 'text/event-stream' } });
    expect(sse.status).toBe(503);
    expect(sse.headers.get('retry-after')).toBe('1');
    expect(await sse.text()).toMatch(/beyond index/);
    expect(await upgradeStatus(`${wsBase}/Item/?since=${applied}`)).toBe(101);
  });
});
