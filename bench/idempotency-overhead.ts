// What an Idempotency-Key costs a write (issue 11): PUTs to one `lockstep dev` node at 16
// connections, without a key and with a fresh key per request (the apply records it with the
// answer, and a lookup precedes the run), the runs alternating plain, keyed, plain, keyed so
// that the machine's drift shows as the spread between runs of the same kind. Prints a markdown
// table.
//
//   npm run build && node dist/bench/idempotency-overhead.js [--duration 5]
//
// Client and node share this machine's two cores: only the keyed/plain ratio of runs side by
// side means anything.
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { runMain } from './run-main.js';
import { copyApp, removeDir, startDevServer, tempDir } from '../test/support/dev-server.js';

const { values } = parseArgs({ options: { duration: { type: 'string', default: '5' } } });
const durationS = Math.min(Math.max(1, Number(values.duration)), 30);
const connections = 16;
const keyCount = 10_000;

interface Row {
  readonly mode: 'plain' | 'keyed';
  readonly round: number;
  readonly requestsPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly non2xx: number;
}

function load(base: string, mode: Row['mode'], round: number): Promise<Row> {
  const requests = [
    {
      setupRequest: (request: Record<string, unknown>) => {
        const i = Math.floor(Math.random() * keyCount);
        const headers: Record<string, string> = { 'content-type': 'application/json', ...(mode === 'keyed' ? { 'idempotency-key': randomUUID() } : {}) };
        return { ...request, method: 'PUT', path: `/shop/Item/i${i}`, headers, body: JSON.stringify({ name: `item ${i}` }) };
      },
    },
  ];
  return new Promise((resolveRun, reject) => {
    autocannon({ url: base, connections, pipelining: 1, duration: durationS, timeout: 10, requests: requests as unknown as autocannon.Request[] }, (error, result) => {
      if (error) reject(error);
      else resolveRun({ mode, round, requestsPerS: Math.round(result.requests.average), p50Ms: result.latency.p50, p99Ms: result.latency.p99, non2xx: result.non2xx });
    });
  });
}

runMain(async () => {
  const appDir = copyApp('shop');
  const dataDir = tempDir('lockstep-bench-idempotency-');
  const server = await startDevServer(appDir, dataDir);
  try {
    const rows: Row[] = [];
    for (let round = 1; round <= 2; round++) {
      rows.push(await load(server.base, 'plain', round));
      rows.push(await load(server.base, 'keyed', round));
    }
    const mean = (mode: Row['mode']): number => rows.filter((row) => row.mode === mode).reduce((sum, row) => sum + row.requestsPerS, 0) / 2;
    process.stdout.write(`PUT /shop/Item/<id>, ${connections} connections, ${durationS} s per run, one lockstep dev node\n\n`);
    process.stdout.write('| run | mode | req/s | p50 ms | p99 ms | non-2xx |\n|---|---|---|---|---|---|\n');
    for (const row of rows) process.stdout.write(`| ${row.round} | ${row.mode} | ${row.requestsPerS} | ${row.p50Ms} | ${row.p99Ms} | ${row.non2xx} |\n`);
    process.stdout.write(`\nkeyed/plain throughput: ${(mean('keyed') / mean('plain')).toFixed(2)}\n`);
  } finally {
    await server.stop();
    removeDir(appDir);
    removeDir(dataDir);
  }
});
