// The control plane on real processes: a control plane and five nodes in eu(2)/us(2)/ap(1).
// clusterctl deploy --plan changes nothing; impossible specs are refused with exit 1 and change
// nothing; deploy --regions eu,us places voters only in eu and us, a learner on the remaining
// node of those regions and nothing on ap; the app serves writes and its learner local reads;
// a node added to eu becomes a learner; draining a voter moves it away; a voter's node killed
// past the grace period is marked down and its replica replaced.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pollUntil, shopAppDir, type ClusterNode } from '../support/cluster.js';
import { openEventStream, openWebSocket } from '../support/change-stream.js';
import { Fleet, nodesOf } from '../support/fleet.js';

interface AppStatusJson {
  readonly name: string;
  readonly voters: string[];
  readonly learners: string[];
  readonly activeVersion: number;
  readonly desiredVersion: number;
  readonly converged: boolean;
  readonly survival: { survives: string; reason: string };
  readonly group: { leader: string; voters: string[]; learners: string[] } | null;
}

const regionOf: Record<string, string> = { eu1: 'eu', eu2: 'eu', us1: 'us', us2: 'us', ap1: 'ap', eu3: 'eu' };

async function hostedApps(node: ClusterNode): Promise<string[]> {
  const response = await fetch(`${node.base}/_status`, { signal: AbortSignal.timeout(5_000) });
  const body = (await response.json()) as { apps: { name: string }[] };
  return body.apps.map((app) => app.name);
}

describe('control plane: placement on a fleet in three regions', () => {
  let fleet: Fleet;

  beforeAll(async () => {
    fleet = await Fleet.start({
      nodes: nodesOf('eu:2,us:2,ap:1'),
      suspectAfter: '2s',
      downAfter: '6s',
    });
  }, 90_000);

  afterAll(async () => {
    await fleet?.close();
  }, 60_000);

  it('lists the registered nodes with their regions and zones', async () => {
    const body = await fleet.ctlJson<{ nodes: { id: string; region: string; zone: string; state: string }[] }>(['nodes']);
    expect(body.nodes.map((node) => `${node.id}:${node.region}:${node.zone}:${node.state}`).sort()).toEqual(['ap1:ap:ap-a:up', 'eu1:eu:eu-a:up', 'eu2:eu:eu-b:up', 'us1:us:us-a:up', 'us2:us:us-b:up']);
    const table = await fleet.ctl(['nodes']);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^NODE\s+REGION\s+ZONE\s+STATE/);
  });

  it('plans without changing anything, and refuses impossible specs with exit 1', async () => {
    const plan = await fleet.ctl(['deploy', shopAppDir, '--regions', 'eu,us', '--plan', '-o', 'json']);
    expect(plan.code, plan.stderr).toBe(0);
    const planned = JSON.parse(plan.stdout) as { planId: string; changes: { node: string; to: string }[]; survival: { survives: string } };
    expect(planned.changes.filter((change) => change.to === 'voter')).toHaveLength(3);
    expect(planned.changes.every((change) => change.node !== 'ap1')).toBe(true);
    expect(planned.planId).toMatch(/^\d+-[0-9a-f]{12}$/);

    const tooFew = await fleet.ctl(['deploy', shopAppDir, '--regions', 'ap', '--replicas', '3']);
    expect(tooFew.code).toBe(1);
    expect(tooFew.stderr).toMatch(/3 voters need 3 eligible nodes/);
    const regionSurvival = await fleet.ctl(['deploy', shopAppDir, '--regions', 'eu,us', '--survive', 'region']);
    expect(regionSurvival.code).toBe(1);
    expect(regionSurvival.stderr).toMatch(/region/);
    const usage = await fleet.ctl(['deploy', shopAppDir]);
    expect(usage.code).toBe(2);

    const apps = await fleet.ctlJson<{ apps: unknown[] }>(['apps']);
    expect(apps.apps).toEqual([]);
    for (const node of fleet.nodes) expect(await hostedApps(node)).toEqual([]);
  });

  it('places voters only in eu and us, a learner on the other node there, nothing on ap', async () => {
    const plan = JSON.parse((await fleet.ctl(['deploy', shopAppDir, '--regions', 'eu,us', '--plan', '-o', 'json'])).stdout) as { planId: string };
    const deploy = await fleet.ctl(['deploy', shopAppDir, '--regions', 'eu,us', '--plan-id', plan.planId, '--timeout', '90s']);
    expect(deploy.code, `${deploy.stdout}\n${deploy.stderr}\n${fleet.describeOutput()}`).toBe(0);
    const status = await fleet.ctlJson<AppStatusJson>(['status', 'shop']);
    expect(status.converged).toBe(true);
    expect(status.voters).toHaveLength(3);
    expect(status.learners).toHaveLength(1);
    for (const id of [...status.voters, ...status.learners]) expect(['eu', 'us']).toContain(regionOf[id]);
    expect(new Set(status.voters.map((id) => regionOf[id]))).toEqual(new Set(['eu', 'us']));
    expect(status.group?.voters).toEqual(status.voters);
    expect(status.group?.learners).toEqual(status.learners);
    // Three voters in three distinct zones (two regions): the loss of any one zone leaves a quorum.
    expect(status.survival.survives).toBe('zone');
    expect(await hostedApps(fleet.node('ap1'))).toEqual([]);

    // The app serves: a write through a voter, read back on the learner.
    const voter = fleet.node(status.voters[0] as string);
    const put = await fetch(`${voter.base}/shop/Product/p1`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'kettle', price: 20, stock: 3 }) });
    expect(put.status, await put.text()).toBeLessThan(300);
    const learner = fleet.node(status.learners[0] as string);
    const read = await pollUntil(
      async () => {
        const response = await fetch(`${learner.base}/shop/Product/p1`, { headers: { 'x-lockstep-consistency': 'linearizable' } });
        return response.status === 200 ? ((await response.json()) as { name: string }) : undefined;
      },
      30_000,
      'the learner to serve the record',
    );
    expect(read.name).toBe('kettle');
  }, 120_000);

  it('answers on ap, which hosts nothing, by forwarding REST, SSE and WebSocket to a replica', async () => {
    const ap = fleet.node('ap1');
    const status = await fleet.ctlJson<AppStatusJson>(['status', 'shop']);
    const hosts = [...status.voters, ...status.learners];
    const read = await pollUntil(
      async () => {
        const response = await fetch(`${ap.base}/shop/Product/p1`);
        return response.status === 200 ? response : undefined;
      },
      30_000,
      'ap1 to forward a read',
    );
    expect(hosts).toContain(read.headers.get('x-lockstep-served-by'));
    expect(read.headers.get('x-lockstep-forwarded-by')).toBe('ap1');
    expect(((await read.json()) as { name: string }).name).toBe('kettle');
    const write = await fetch(`${ap.base}/shop/Product/p2`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'teapot', price: 12, stock: 1 }) });
    expect(write.status, await write.text()).toBeLessThan(300);
    expect(hosts).toContain(write.headers.get('x-lockstep-served-by'));

    const ws = await openWebSocket(`${ap.base.replace(/^http/, 'ws')}/shop/Product/`);
    const sse = await openEventStream(`${ap.base}/shop/Product/`);
    expect(hosts).toContain(sse.headers['x-lockstep-served-by']);
    const change = await fetch(`${ap.base}/shop/Product/p3`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'cup', price: 3, stock: 9 }) });
    expect(change.status).toBeLessThan(300);
    const [wsMessage] = (await ws.waitForCount(1)).filter((m) => m.type === 'put');
    const [sseMessage] = (await sse.waitForCount(1)).filter((m) => m.type === 'put');
    expect(wsMessage?.id).toBe('p3');
    expect(sseMessage?.id).toBe('p3');
    await ws.close();
    await sse.close();

    const topology = (await (await fetch(`${ap.base}/_topology`)).json()) as { apps: { name: string; voters: string[] }[]; nodes: { id: string; url: string }[] };
    expect(topology.apps.find((app) => app.name === 'shop')?.voters).toEqual(status.voters);
    expect(topology.nodes.map((node) => node.id).sort()).toEqual(['ap1', 'eu1', 'eu2', 'us1', 'us2']);
    const controlTopology = (await (await fetch(`${fleet.controlUrl}/_topology`)).json()) as { apps: { name: string }[] };
    expect(controlTopology.apps.map((app) => app.name)).toEqual(['shop']);
  }, 90_000);

  it('makes a node added to eu a learner of the app', async () => {
    await fleet.addNode({ id: 'eu3', region: 'eu', zone: 'eu-c' });
    const status = await pollUntil(
      async () => {
        const body = await fleet.ctlJson<AppStatusJson>(['status', 'shop']);
        return body.converged && body.group?.learners.includes('eu3') ? body : undefined;
      },
      60_000,
      'eu3 to become a learner of shop',
    );
    expect(status.voters).not.toContain('eu3');
    expect(await hostedApps(fleet.node('eu3'))).toEqual(['shop']);
  }, 90_000);

  it('drains a voter without a failed request under a light load: its replica moves away, then it is drained', async () => {
    const before = await fleet.ctlJson<AppStatusJson>(['status', 'shop']);
    // The leader, so the move includes a leadership transfer.
    const victim = (before.group?.leader ?? before.voters[0]) as string;
    const entry = fleet.nodes.find((node) => node.id !== victim && node.id !== 'ap1' && [...before.voters, ...before.learners].includes(node.id)) as ClusterNode;
    let stop = false;
    const outcomes: number[] = [];
    const failures: string[] = [];
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        for (const via of [entry, fleet.node('ap1')]) {
          try {
            const response = await fetch(`${via.base}/shop/Product/load-${i % 20}`, {
              method: 'PUT',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ name: `load ${i}`, price: 1, stock: i }),
              signal: AbortSignal.timeout(15_000),
            });
            outcomes.push(response.status);
            const text = await response.text();
            if (response.status >= 300) failures.push(`${via.id} ${response.status} ${text.slice(0, 200)}`);
          } catch (error) {
            failures.push(`${via.id} ${String(error)}`);
          }
        }
        await new Promise((resolveSleep) => setTimeout(resolveSleep, 50));
      }
    })();
    const drain = await fleet.ctl(['drain', victim, '--timeout', '90s']);
    stop = true;
    await load;
    expect(drain.code, `${drain.stdout}\n${drain.stderr}`).toBe(0);
    expect(drain.stdout).toMatch(/drained/);
    expect(failures, failures.join('\n')).toEqual([]);
    expect(outcomes.length).toBeGreaterThan(10);
    const after = await pollUntil(
      async () => {
        const body = await fleet.ctlJson<AppStatusJson>(['status', 'shop']);
        return body.converged ? body : undefined;
      },
      60_000,
      'shop to converge after the drain',
    );
    expect(after.voters).toHaveLength(3);
    expect(after.voters).not.toContain(victim);
    expect(after.learners).not.toContain(victim);
    const nodes = await fleet.ctlJson<{ nodes: { id: string; state: string }[] }>(['nodes']);
    expect(nodes.nodes.find((node) => node.id === victim)?.state).toBe('drained');
    await pollUntil(async () => ((await hostedApps(fleet.node(victim))).length === 0 ? true : undefined), 30_000, `${victim} to release the app`);
    const undrain = await fleet.ctl(['undrain', victim]);
    expect(undrain.code).toBe(0);
  }, 150_000);

  it('replaces the replica of a voter whose node stays down past the grace period', async () => {
    const before = await fleet.ctlJson<AppStatusJson>(['status', 'shop']);
    const victim = before.voters.find((id) => id !== before.group?.leader) as string;
    await fleet.node(victim).kill();
    const nodes = await pollUntil(
      async () => {
        const body = await fleet.ctlJson<{ nodes: { id: string; state: string }[] }>(['nodes']);
        return body.nodes.find((node) => node.id === victim)?.state === 'down' ? body : undefined;
      },
      30_000,
      `${victim} to be marked down`,
    );
    expect(nodes.nodes.filter((node) => node.state === 'up').length).toBeGreaterThanOrEqual(4);
    const after = await pollUntil(
      async () => {
        const body = await fleet.ctlJson<AppStatusJson>(['status', 'shop']);
        return body.converged && !body.voters.includes(victim) && body.group?.voters.includes(victim) === false ? body : undefined;
      },
      60_000,
      `the replica on ${victim} to be replaced`,
    );
    expect(after.voters).toHaveLength(3);
    for (const id of after.voters) expect(['eu', 'us']).toContain(regionOf[id]);
    // The replacement serves the data written before.
    const replacement = after.voters.find((id) => !before.voters.includes(id)) as string;
    const read = await fetch(`${fleet.node(replacement).base}/shop/Product/p1`, { headers: { 'x-lockstep-consistency': 'linearizable' } });
    expect(read.status).toBe(200);
    // Back up with its data, it rejoins as itself (not as a new node) and becomes a learner again.
    await fleet.node(victim).start();
    await pollUntil(
      async () => {
        const body = await fleet.ctlJson<AppStatusJson>(['status', 'shop']);
        return body.converged && body.learners.includes(victim) ? body : undefined;
      },
      60_000,
      `${victim} to rejoin as a learner`,
    );
  }, 150_000);
});
