// Load on a real 3-node cluster of `lockstep node` processes (default timing: 50 ms ticks,
// election after 10 ticks): replicated PUT through the leader and through a follower (forwarded)
// at 1, 32 and 256 connections; GET through a follower at each consistency level; and the time
// from SIGKILL of the leader to the first acknowledged write, repeated. Prints a markdown table.
//
//   npx tsc -p tsconfig.json && node dist/bench/cluster-load.js [--duration 10] [--failovers 5]
//
// Client and the three nodes share this machine's cores; read the figures as relative.
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Cluster, sleep, type ClusterNode } from '../test/support/cluster.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    failovers: { type: 'string', default: '5' },
    keys: { type: 'string', default: '10000' },
  },
});
/** Seconds per load case; capped so the whole run stays bounded. */
const durationS = Math.min(Math.max(1, Number(values.duration)), 60);
const failoverCount = Math.min(Math.max(1, Number(values.failovers)), 20);
const keyCount = Math.min(Math.max(1, Number(values.keys)), 1_000_000);
const connectionCounts = [1, 32, 256] as const;
const readConnections = 32;
/** Records written before the read cases, so reads mostly hit. */
const preloadCount = Math.min(keyCount, 2_000);
/** Past this a failover measurement counts as "no write got through". */
const failoverTimeoutMs = 30_000;
/** Per write attempt while waiting for the new leader: short, so the first working moment shows. */
const failoverAttemptTimeoutMs = 1_000;

interface Row {
  readonly name: string;
  readonly connections: number;
  readonly requestsPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly non2xx: number;
  readonly errors: number;
}

const itemBody = (i: number): string => JSON.stringify({ name: `item-${i}-abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz`, price: (i % 1000) + 0.5 });
const randomKey = (): number => Math.floor(Math.random() * keyCount);

function run(name: string, node: ClusterNode, connections: number, method: 'GET' | 'PUT', headers: Record<string, string>): Promise<Row> {
  return new Promise((resolveRun, reject) => {
    const requests = [
      {
        setupRequest: (request: Record<string, unknown>) => {
          // Reads ask for preloaded records, so they measure hits rather than 404s.
          const i = method === 'GET' ? Math.floor(Math.random() * preloadCount) : randomKey();
          return { ...request, method, path: `/shop/Item/b${i}`, headers, ...(method === 'PUT' ? { body: itemBody(i) } : {}) };
        },
      },
    ];
    const instance = autocannon(
      { url: node.base, connections, pipelining: 1, duration: durationS, timeout: 10, requests: requests as unknown as autocannon.Request[] },
      (error, result) => {
        clearTimeout(hardStop);
        if (error) {
          reject(error);
          return;
        }
        const row: Row = {
          name,
          connections,
          requestsPerS: Math.round(result.requests.average),
          p50Ms: result.latency.p50,
          p99Ms: result.latency.p99,
          non2xx: result.non2xx,
          errors: result.errors + result.timeouts,
        };
        process.stderr.write(`${JSON.stringify(row)}\n`);
        resolveRun(row);
      },
    );
    const hardStop = setTimeout(() => instance.stop(), (durationS + 20) * 1000);
  });
}

async function putOnce(node: ClusterNode, id: string, timeoutMs: number): Promise<number> {
  try {
    const response = await fetch(`${node.base}/shop/Item/${id}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: itemBody(0),
      signal: AbortSignal.timeout(timeoutMs),
    });
    await response.text();
    return response.status;
  } catch {
    return 0;
  }
}

async function preload(node: ClusterNode): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < preloadCount) {
        const i = next++;
        const status = await putOnce(node, `b${i}`, 10_000);
        if (status !== 204) throw new Error(`preload PUT b${i} answered ${status}`);
      }
    }),
  );
}

/** SIGKILL the leader, then write through a survivor until one write is acknowledged. */
async function failover(cluster: Cluster, attempt: number): Promise<number> {
  const leader = await cluster.waitForLeader();
  const survivor = cluster.running().find((node) => node !== leader) as ClusterNode;
  // A write first, so the survivor knows the leader is alive and its log is current.
  if ((await putOnce(survivor, `failover-warm-${attempt}`, 10_000)) !== 204) throw new Error('warm-up write failed');
  const killedAt = performance.now();
  await leader.kill();
  let elapsedMs = Number.NaN;
  for (let i = 0; performance.now() - killedAt < failoverTimeoutMs; i++) {
    const status = await putOnce(survivor, `failover-${attempt}-${i}`, failoverAttemptTimeoutMs);
    if (status === 204) {
      elapsedMs = performance.now() - killedAt;
      break;
    }
    await sleep(10);
  }
  await leader.start();
  await cluster.waitReady();
  await cluster.waitForLeader();
  process.stderr.write(`failover ${attempt}: ${Math.round(elapsedMs)} ms\n`);
  return elapsedMs;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

async function main(): Promise<void> {
  const cluster = await Cluster.start({ size: 3 });
  const rows: Row[] = [];
  let failovers: number[] = [];
  try {
    const leader = await cluster.waitForLeader();
    const follower = cluster.running().find((node) => node !== leader) as ClusterNode;
    const json = { 'content-type': 'application/json' };
    for (const connections of connectionCounts) rows.push(await run('PUT via leader', leader, connections, 'PUT', json));
    for (const connections of connectionCounts) rows.push(await run('PUT via follower (forwarded)', follower, connections, 'PUT', json));
    await preload(leader);
    for (const consistency of ['stale', 'session', 'linearizable']) {
      rows.push(await run(`GET ${consistency} via follower`, follower, readConnections, 'GET', { 'x-lockstep-consistency': consistency }));
    }
    rows.push(await run('GET linearizable via leader', leader, readConnections, 'GET', { 'x-lockstep-consistency': 'linearizable' }));
    for (let attempt = 1; attempt <= failoverCount; attempt++) failovers.push(await failover(cluster, attempt));
  } finally {
    await cluster.close();
  }
  failovers = failovers.filter((ms) => Number.isFinite(ms));
  const lines = [
    `3-node cluster, ${durationS} s per case, ${keyCount} keys, ~100-byte records, default timing (50 ms tick, election 10 ticks)`,
    '',
    '| case | connections | req/s | p50 ms | p99 ms | non-2xx | errors |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rows.map((row) => `| ${row.name} | ${row.connections} | ${row.requestsPerS} | ${row.p50Ms} | ${row.p99Ms} | ${row.non2xx} | ${row.errors} |`),
    '',
    `| leader SIGKILL -> first acknowledged write (via a survivor) | runs | median ms | min ms | max ms |`,
    '|---|---:|---:|---:|---:|',
    `| failover | ${failovers.length}/${failoverCount} | ${Math.round(median(failovers))} | ${Math.round(Math.min(...failovers))} | ${Math.round(Math.max(...failovers))} |`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`cluster-load: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
