// The simulated wide-area matrix (eu-us 40 ms, eu-ap 120 ms, us-ap 90 ms one way) on real
// processes: a node in ap forwards to the nearest replica by measured round trip (us, not eu);
// a forwarded write pays the ap-us round trip; a commit pays a cross-region round trip exactly
// when the leader's region does not hold a majority of the voters; a client that declares its
// region is answered one round trip late.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pollUntil, shopAppDir } from '../support/cluster.js';
import { Fleet } from '../support/fleet.js';

const regionOf: Record<string, string> = { eu1: 'eu', eu2: 'eu', us1: 'us', us2: 'us', ap1: 'ap' };

async function timedPut(base: string, id: string, headers: Record<string, string> = {}): Promise<{ ms: number; servedBy: string | null }> {
  const started = performance.now();
  const response = await fetch(`${base}/shop/Product/${id}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ name: id, price: 1, stock: 1 }),
  });
  await response.text();
  if (response.status >= 300) throw new Error(`PUT ${id} answered ${response.status}`);
  return { ms: performance.now() - started, servedBy: response.headers.get('x-lockstep-served-by') };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

describe('simulated wide-area latency', () => {
  let fleet: Fleet;

  beforeAll(async () => {
    fleet = await Fleet.start({
      nodes: [
        { id: 'eu1', region: 'eu', zone: 'eu-a' },
        { id: 'eu2', region: 'eu', zone: 'eu-b' },
        { id: 'us1', region: 'us', zone: 'us-a' },
        { id: 'us2', region: 'us', zone: 'us-b' },
        { id: 'ap1', region: 'ap', zone: 'ap-a' },
      ],
      nodeArgs: ['--simulate-wan', 'default'],
    });
    const deploy = await fleet.ctl(['deploy', shopAppDir, '--regions', 'eu,us', '--timeout', '90s']);
    if (deploy.code !== 0) throw new Error(`deploy failed: ${deploy.stdout}\n${deploy.stderr}\n${fleet.describeOutput()}`);
  }, 150_000);

  afterAll(async () => {
    await fleet?.close();
  }, 60_000);

  it('forwards from ap to the nearest replica (us) and pays that round trip', async () => {
    const ap = fleet.node('ap1');
    const topology = await pollUntil(
      async () => {
        const body = (await (await fetch(`${ap.base}/_topology`)).json()) as { roundTripsMs?: Record<string, number> };
        const trips = body.roundTripsMs ?? {};
        return ['eu1', 'eu2', 'us1', 'us2'].every((id) => trips[id] !== undefined) ? trips : undefined;
      },
      30_000,
      'ap1 to measure its round trips',
    );
    expect(topology.us1).toBeGreaterThanOrEqual(180);
    expect(topology.eu1).toBeGreaterThanOrEqual(240);
    const puts = [];
    for (let i = 0; i < 5; i++) puts.push(await timedPut(ap.base, `ap-${i}`));
    for (const put of puts) expect(regionOf[put.servedBy ?? '']).toBe('us');
    expect(median(puts.map((put) => put.ms))).toBeGreaterThanOrEqual(180);
  }, 60_000);

  it('commits locally when the leader region holds a voter majority, and a round trip later when it does not', async () => {
    const status = await fleet.ctlJson<{ voters: string[]; group: { leader: string } }>(['status', 'shop']);
    // The fastest of several writes: the simulated delay is a floor no scheduling luck can beat,
    // while a loaded machine (the whole suite runs beside this) can slow any single write.
    const measure = async (leader: string): Promise<number> => {
      const times = [];
      for (let i = 0; i < 15; i++) times.push((await timedPut(fleet.node(leader).base, `commit-${leader}-${i}`)).ms);
      return Math.min(...times);
    };
    const regions = new Map<string, number>();
    for (const id of status.voters) regions.set(regionOf[id] as string, (regions.get(regionOf[id] as string) ?? 0) + 1);
    const majorityRegion = [...regions].find(([, count]) => count * 2 > status.voters.length)?.[0];
    expect(majorityRegion).toBeDefined();
    // Lead from the majority region, then from the other one.
    const fastest = new Map<string, number>();
    for (const region of [majorityRegion, [...regions.keys()].find((r) => r !== majorityRegion)]) {
      const want = status.voters.find((id) => regionOf[id] === region) as string;
      await pollUntil(
        async () => {
          const current = (await fleet.ctlJson<{ group: { leader: string } }>(['status', 'shop'])).group.leader;
          if (current === want) return true;
          await fleet.node(current).admin('shop/transfer', { to: want });
          return undefined;
        },
        30_000,
        `leadership to move to ${want}`,
      );
      const ms = await measure(want);
      console.log(`wan commit: voters ${status.voters.join(',')}, leader ${want} (${region}), fastest of 15 PUTs ${ms.toFixed(1)} ms`);
      fastest.set(region as string, ms);
    }
    // With the leader in the majority region a commit needs no cross-region acknowledgement; from
    // the other region every commit waits at least one eu-us round trip (2 x 40 ms).
    expect(fastest.get(majorityRegion as string)).toBeLessThan(80);
    expect([...fastest].find(([region]) => region !== majorityRegion)?.[1]).toBeGreaterThanOrEqual(80);
  }, 90_000);

  it('answers a client that declares a far region one round trip late', async () => {
    const eu = fleet.node('eu1');
    const near = await timedPut(eu.base, 'client-near', { 'x-lockstep-client-region': 'eu' });
    const far = await timedPut(eu.base, 'client-far', { 'x-lockstep-client-region': 'ap' });
    expect(far.ms - near.ms).toBeGreaterThanOrEqual(200);
  }, 30_000);
});
