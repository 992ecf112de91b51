// REST load against a real `lockstep dev` server, beside a bare node:http server answering a
// fixed 100-byte JSON (the ceiling of any Node HTTP server on this machine).
//
//   npm run build && node dist/bench/rest-load.js [--duration 10] [--connections 32] [--keys 10000] [--warmup 2]
//
// Cases: GET by random id, PUT random id (~100-byte records, durable), POST create, an indexed
// range query, and the ceiling. Client and server share the machine's cores, as in the anchors.
// Every run is bounded: autocannon stops after --duration seconds, plus a hard timer.
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    keys: { type: 'string', default: '10000' },
    warmup: { type: 'string', default: '2' },
    only: { type: 'string', default: 'ceiling,get,put,post,query,overwrite' },
  },
});
const durationS = Math.min(Number(values.duration), 120);
const connections = Number(values.connections);
const keys = Number(values.keys);
const warmupS = Number(values.warmup);
const only = new Set(values.only.split(','));

const pad = (n: number, width: number): string => String(n).padStart(width, '0');
/** The same ~100-byte record the peer anchors use. */
const itemBody = (i: number): string =>
  JSON.stringify({ name: `item-${pad(i, 8)}-abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz`, price: Number(((i % 100000) / 100 + 0.5).toFixed(2)) });
const randomKey = (): number => 1 + Math.floor(Math.random() * keys);
const poolSize = 4096;

interface RequestShape {
  method: 'GET' | 'PUT' | 'POST';
  path: string;
  body?: string;
}

interface CaseResult {
  name: string;
  requestsPerS: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
}

async function load(name: string, url: string, shapes: RequestShape[], seconds = durationS): Promise<CaseResult> {
  let k = 0;
  const headers = { 'content-type': 'application/json' };
  const requests =
    shapes.length === 1
      ? [{ ...shapes[0], headers }]
      : [{ setupRequest: (req: Record<string, unknown>) => ({ ...req, ...shapes[k++ % shapes.length], headers }) }];
  const run = (duration: number): Promise<autocannon.Result> =>
    new Promise((resolveRun, reject) => {
      const instance = autocannon({ url, connections, pipelining: 1, duration, timeout: 10, requests: requests as autocannon.Request[] }, (error, result) =>
        error ? reject(error) : resolveRun(result),
      );
      setTimeout(() => instance.stop(), (duration + 15) * 1000).unref();
    });
  if (warmupS > 0) await run(warmupS);
  const result = await run(seconds);
  const summary: CaseResult = {
    name,
    requestsPerS: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
  process.stderr.write(`${JSON.stringify(summary)}\n`);
  return summary;
}

function pool(make: (i: number) => RequestShape): RequestShape[] {
  return Array.from({ length: poolSize }, () => make(randomKey()));
}

async function ceiling(): Promise<CaseResult> {
  const body = JSON.stringify({ id: 'ceiling', name: 'x'.repeat(64), price: 12.5 }).padEnd(100, ' ');
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', () => resolveListen()));
  const port = (server.address() as { port: number }).port;
  try {
    return await load('ceiling: node:http fixed 100-byte JSON', `http://127.0.0.1:${port}`, [{ method: 'GET', path: '/' }]);
  } finally {
    server.close();
  }
}

async function startLockstep(appDir: string, dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [join(root, 'dist', 'src', 'cli', 'lockstep.js'), 'dev', appDir, '--port', '0', '--data', dataDir], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, LOCKSTEP_LOG_LEVEL: 'warn' },
  });
  const url = await new Promise<string>((resolveUrl, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 30_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /serving app \S+ version \d+ at (http:\/\/\S+?)\/?\n/.exec(out);
      if (match !== null) {
        clearTimeout(timer);
        resolveUrl(match[1] as string);
      }
    });
  });
  return { child, url };
}

async function prefill(appUrl: string): Promise<void> {
  const concurrency = 32;
  let next = 1;
  const deadline = Date.now() + 120_000;
  const worker = async (): Promise<void> => {
    while (next <= keys) {
      if (Date.now() > deadline) throw new Error('prefill took over 2 minutes');
      const i = next++;
      const response = await fetch(`${appUrl}/Item/${i}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: itemBody(i) });
      if (response.status >= 300) throw new Error(`prefill PUT ${i}: ${response.status}`);
      await response.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

function dataFileMiB(dataDir: string): number {
  return Math.round((statSync(join(dataDir, 'shop', 'lmdb', 'data.mdb')).size / 1048576) * 10) / 10;
}

async function main(): Promise<void> {
  const results: CaseResult[] = [];
  const notes: string[] = [];
  if (only.has('ceiling')) results.push(await ceiling());
  const appDir = mkdtempSync(join(tmpdir(), 'lockstep-bench-app-'));
  cpSync(join(root, 'examples', 'shop'), appDir, { recursive: true });
  const dataDir = mkdtempSync(join(tmpdir(), 'lockstep-bench-data-'));
  const { child, url } = await startLockstep(appDir, dataDir);
  try {
    const started = Date.now();
    await prefill(url);
    notes.push(`prefill: ${keys} PUTs in ${((Date.now() - started) / 1000).toFixed(1)} s; data file ${dataFileMiB(dataDir)} MiB`);
    const path = new URL(url).pathname;
    if (only.has('get')) results.push(await load('lockstep GET by random id', url, pool((i) => ({ method: 'GET', path: `${path}/Item/${i}` }))));
    if (only.has('put')) results.push(await load('lockstep PUT random id (durable)', url, pool((i) => ({ method: 'PUT', path: `${path}/Item/${i}`, body: itemBody(i) }))));
    if (only.has('post')) results.push(await load('lockstep POST create (durable)', url, pool((i) => ({ method: 'POST', path: `${path}/Item/`, body: itemBody(i) }))));
    if (only.has('query')) {
      results.push(
        await load('lockstep indexed range query (10 rows)', url, pool(() => {
          const low = Math.floor(Math.random() * 90);
          return { method: 'GET', path: `${path}/Item/?price=ge=${low}&price=lt=${low + 1}&limit(10)` };
        })),
      );
    }
    if (only.has('overwrite')) {
      // Sustained overwrites of the same keys: the data file must stay proportional to live data.
      const before = dataFileMiB(dataDir);
      const overwriteKeys = Math.min(keys, 1000);
      await load('lockstep PUT overwrite 1,000 keys', url, Array.from({ length: poolSize }, (_, n) => ({ method: 'PUT' as const, path: `${path}/Item/${1 + (n % overwriteKeys)}`, body: itemBody(1 + (n % overwriteKeys)) })), Math.max(durationS, 20));
      notes.push(`data file under sustained overwrites: ${before} MiB before, ${dataFileMiB(dataDir)} MiB after`);
    }
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolveExit) => child.once('exit', resolveExit));
    rmSync(appDir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  }
  const cpu = cpus();
  process.stdout.write(`\n${new Date().toISOString()} - ${cpu.length} x ${cpu[0]?.model ?? 'cpu'}, node ${process.version}\n`);
  process.stdout.write(`autocannon, ${connections} connections, ${durationS} s per case (+${warmupS} s warmup), client on the same cores\n\n`);
  process.stdout.write('| case | req/s | p50 ms | p99 ms | non-2xx | errors |\n|---|---:|---:|---:|---:|---:|\n');
  for (const r of results) process.stdout.write(`| ${r.name} | ${r.requestsPerS} | ${r.p50Ms} | ${r.p99Ms} | ${r.non2xx} | ${r.errors} |\n`);
  process.stdout.write(`\n${notes.map((n) => `- ${n}`).join('\n')}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
