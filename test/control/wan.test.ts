// The simulated wide-area matrix (eu-us 40 ms, eu-ap 120 ms, us-ap 90 ms one way) on real
// processes: a node in ap forwards to the nearest replica by measured round trip (us, not eu);
// a forwarded write pays the ap-us round trip; the control plane keeps each app's leader in the
// region holding the voter majority, where a commit needs no cross-region acknowledgement; a
// client that declares its region is answered one round trip late.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/client/index.js';
import { pollUntil, shopAppDir } from '../support/cluster.js';
import { Fleet, nodesOf } from '../support/fleet.js';

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
      nodes: nodesOf('eu:2,us:2,ap:1'),
      nodeArgs: ['--simulate-wan', 'default'],
    });
    await fleet.deploy(shopAppDir);
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

  it('commits without a cross-region round trip only from the majority region, and keeps the leader there', async () => {
    const status = await fleet.ctlJson<{ voters: string[]; group: { leader: string } }>(['status', 'shop']);
    // The fastest of several writes: the simulated delay is a floor no scheduling luck can beat,
    // while a loaded machine (the whole suite runs beside this) can slow any single write.
    const fastest = async (via: string): Promise<number> => {
      const times = [];
      for (let i = 0; i < 15; i++) times.push((await timedPut(fleet.node(via).base, `commit-${via}-${i}`)).ms);
      return Math.min(...times);
    };
    const regions = new Map<string, number>();
    for (const id of status.voters) regions.set(regionOf[id] as string, (regions.get(regionOf[id] as string) ?? 0) + 1);
    const majorityRegion = [...regions].find(([, count]) => count * 2 > status.voters.length)?.[0] as string;
    // '' while no leader is reported (in the middle of a transfer).
    const leaderOf = async (): Promise<string> => (await fleet.ctlJson<{ group: { leader: string } | null }>(['status', 'shop'])).group?.leader ?? '';
    // The control plane keeps the leader in the region that holds the voter majority.
    const leader = await pollUntil(async () => {
      const current = await leaderOf();
      return regionOf[current] === majorityRegion ? current : undefined;
    }, 30_000, `the leader to be in ${majorityRegion}`);
    const local = await fastest(leader);
    const minorityVoter = status.voters.find((id) => regionOf[id] !== majorityRegion) as string;
    // A write through the minority region's voter waits for the leader: one eu-us round trip.
    const remote = await fastest(minorityVoter);
    console.log(`wan commit: voters ${status.voters.join(',')}, leader ${leader}; fastest of 15 PUTs via the leader ${local.toFixed(1)} ms, via ${minorityVoter} ${remote.toFixed(1)} ms`);
    expect(local).toBeLessThan(80);
    expect(remote).toBeGreaterThanOrEqual(80);
    // Moved to the minority region by hand, leadership comes back: two elections later (the
    // transfer, then the control plane's) the leader is in the majority region again.
    const termOf = async (): Promise<number> => (await fleet.ctlJson<{ group: { term: number } | null }>(['status', 'shop'])).group?.term ?? 0;
    const termBefore = await termOf();
    const answer = await fleet.node(leader).admin('shop/transfer', { to: minorityVoter });
    expect(answer.status).toBe(202);
    const back = await pollUntil(
      async () => {
        const [current, term] = [await leaderOf(), await termOf()];
        return term >= termBefore + 2 && regionOf[current] === majorityRegion ? current : undefined;
      },
      30_000,
      `the control plane to move leadership back to ${majorityRegion}`,
    );
    expect(regionOf[back]).toBe(majorityRegion);
    const steps = (await fleet.ctlJson<{ steps: { kind: string; node: string; outcome: string }[] }>(['status', 'shop'])).steps;
    expect(steps.some((step) => step.kind === 'transferLeader' && step.node === minorityVoter && step.outcome === 'done')).toBe(true);
  }, 90_000);

  it('answers a client that declares a far region one round trip late', async () => {
    const eu = fleet.node('eu1');
    const far = await timedPut(eu.base, 'client-far', { 'x-lockstep-client-region': 'ap' });
    // The eu-ap round trip (2 x 120 ms) is a floor under the answer's time.
    expect(far.ms).toBeGreaterThanOrEqual(240);
  }, 30_000);

  it('the client SDK of each region picks the nearest node that serves the app, from any seed', async () => {
    const served = new Set(((await (await fetch(`${fleet.node('eu1').base}/_topology`)).json()) as { apps: { name: string; voters: string[]; learners: string[] }[] }).apps.filter((app) => app.name === 'shop').flatMap((app) => [...app.voters, ...app.learners]));
    for (const region of ['eu', 'us', 'ap']) {
      // Seeded with a node of another region: the topology names the rest.
      const seed = fleet.node(region === 'eu' ? 'us1' : 'eu1').base;
      const client = await connect({ seeds: [seed], app: 'shop', region });
      try {
        const [nearest] = client.nodes();
        const expected = [...served].some((id) => regionOf[id] === region) ? region : 'us';
        expect(regionOf[nearest?.id ?? ''], `client in ${region}: ${JSON.stringify(client.nodes())}`).toBe(expected);
        await client.table('Product').put(`sdk-${region}`, { name: region, price: 1, stock: 1 });
        expect(await client.table('Product').get(`sdk-${region}`)).toMatchObject({ name: region });
      } finally {
        client.close();
      }
    }
  });
});
