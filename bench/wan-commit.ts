// Commit latency of an app placed on eu,us under the simulated wide-area matrix
// (eu-us 40 ms, eu-ap 120 ms, us-ap 90 ms one way): a control plane and five real nodes
// (eu1, eu2, us1, us2, ap1) started with --simulate-wan default, the example shop deployed with
// --regions eu,us, then sequential PUTs (one at a time, so each figure is a latency, not a queue)
// through the leader in the majority region, a follower there, a node of the minority region,
// and ap1 (which hosts nothing and forwards); linearizable and session reads on the minority
// region's voter; and how long the control plane takes to bring leadership back to the majority
// region after it was moved away by hand.
//   npm run build && node dist/bench/wan-commit.js [--requests 100]
import { parseArgs } from 'node:util';
import { runMain } from './run-main.js';
import { pollUntil, shopAppDir } from '../test/support/cluster.js';
import { Fleet, nodesOf } from '../test/support/fleet.js';

const regionOf: Record<string, string> = { eu1: 'eu', eu2: 'eu', us1: 'us', us2: 'us', ap1: 'ap' };

async function timed(url: string, init: RequestInit): Promise<{ ms: number; servedBy: string }> {
  const started = performance.now();
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  await response.text();
  if (response.status >= 300) throw new Error(`${init.method ?? 'GET'} ${url} answered ${response.status}`);
  return { ms: performance.now() - started, servedBy: response.headers.get('x-lockstep-served-by') ?? '?' };
}

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] as number;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { requests: { type: 'string', default: '100' } } });
  const requests = Number(values.requests);
  const fleet = await Fleet.start({
    nodes: nodesOf('eu:2,us:2,ap:1'),
    nodeArgs: ['--simulate-wan', 'default'],
  });
  try {
    await fleet.deploy(shopAppDir);
    const status = await fleet.ctlJson<{ voters: string[]; learners: string[]; group: { leader: string } }>(['status', 'shop']);
    const counts = new Map<string, number>();
    for (const id of status.voters) counts.set(regionOf[id] as string, (counts.get(regionOf[id] as string) ?? 0) + 1);
    const majority = [...counts].find(([, n]) => n * 2 > status.voters.length)?.[0] as string;
    const minority = [...counts.keys()].find((region) => region !== majority) as string;
    // Let ap1 measure its round trips before it routes.
    await pollUntil(
      async () => {
        const body = (await (await fetch(`${fleet.node('ap1').base}/_topology`)).json()) as { roundTripsMs?: Record<string, number> };
        return Object.keys(body.roundTripsMs ?? {}).length >= 4 ? true : undefined;
      },
      30_000,
      'ap1 round trips',
    );
    const moveLeader = async (to: string): Promise<void> => {
      await pollUntil(
        async () => {
          const current = (await fleet.ctlJson<{ group: { leader: string } | null }>(['status', 'shop'])).group?.leader ?? '';
          if (current === to) return true;
          if (current !== '') await fleet.node(current).admin('shop/transfer', { to });
          return undefined;
        },
        30_000,
        `leadership to ${to}`,
      );
    };
    const rows: string[] = [];
    const run = async (label: string, via: string, method: 'PUT' | 'GET', headers: Record<string, string> = {}): Promise<void> => {
      const times: number[] = [];
      const servedBy = new Set<string>();
      for (let i = 0; i < requests; i++) {
        const url = `${fleet.node(via).base}/shop/Product/wan-${i % 50}`;
        const init: RequestInit =
          method === 'PUT'
            ? { method, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ name: `p${i}`, price: 1, stock: i }) }
            : { method, headers };
        const { ms, servedBy: by } = await timed(url, init);
        times.push(ms);
        servedBy.add(by);
      }
      rows.push(`| ${label} | ${via} (${regionOf[via]}) | ${[...servedBy].join(',')} | ${quantile(times, 0.5).toFixed(1)} | ${quantile(times, 0.99).toFixed(1)} |`);
    };
    const inMajority = status.voters.filter((id) => regionOf[id] === majority);
    const inMinority = status.voters.find((id) => regionOf[id] === minority) as string;
    await moveLeader(inMajority[0] as string);
    await run(`PUT via the leader (${majority}, majority region)`, inMajority[0] as string, 'PUT');
    await run(`PUT via a follower in ${majority}`, inMajority[1] as string, 'PUT');
    await run(`PUT via the ${minority} voter (forwards to the leader)`, inMinority, 'PUT');
    await run('PUT via ap1 (hosts nothing: forwarded)', 'ap1', 'PUT');
    await run(`GET linearizable via the ${minority} voter`, inMinority, 'GET', { 'x-lockstep-consistency': 'linearizable' });
    await run(`GET session via the ${minority} voter`, inMinority, 'GET');
    // Leadership moved to the minority region by hand: the control plane moves it back.
    await moveLeader(inMinority);
    const movedAt = performance.now();
    await pollUntil(
      async () => {
        const current = (await fleet.ctlJson<{ group: { leader: string } | null }>(['status', 'shop'])).group?.leader ?? '';
        return regionOf[current] === majority ? true : undefined;
      },
      30_000,
      'leadership back in the majority region',
    );
    const backMs = performance.now() - movedAt;
    process.stdout.write(`voters ${status.voters.join(', ')}; learners ${status.learners.join(', ')}; ${requests} sequential requests per row\n`);
    process.stdout.write(`leadership moved by hand to ${inMinority} (${minority}) was back in ${majority} after ${backMs.toFixed(0)} ms\n\n`);
    process.stdout.write('| request | via | served by | p50 ms | p99 ms |\n|---|---|---|---|---|\n');
    process.stdout.write(`${rows.join('\n')}\n`);
  } finally {
    await fleet.close();
  }
}

runMain(main);
