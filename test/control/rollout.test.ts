// The two-phase switch on real processes: a control plane and four nodes (three voters and a
// learner). A new version is staged into the app's log, every replica prepares it and reports,
// and it is activated only once all have; a version that fails to load on the replicas is
// aborted and the previous one keeps serving everywhere; of two concurrent deploys exactly one
// wins; a replica that is down during prepare makes the rollout abort at the prepare deadline;
// a partition that cuts a region off during prepare aborts the rollout; a rollback is a
// rollout of an earlier version's code through the same two phases; a version
// whose server-error rate breaks the threshold in its validation window is rolled back by the
// control plane itself.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editAppFile, writeApp } from '../support/app-files.js';
import { pollUntil } from '../support/cluster.js';
import { Fleet, nodesOf } from '../support/fleet.js';
import { notesResources, notesSchema } from '../support/notes-app.js';

interface StatusJson {
  readonly activeVersion: number;
  readonly desiredVersion: number;
  readonly converged: boolean;
  readonly failure: { version: number; reason: string } | null;
  readonly rollout: { version: number } | null;
  readonly history: { version: number; outcome: string; reason: string | null; by: string }[];
  readonly members: { node: string; activeVersionHash: string | null }[];
}

const schema = notesSchema;
const resources = (greeting: string): string => notesResources(greeting);

describe('two-phase rollout through the control plane', () => {
  let fleet: Fleet;
  let appDir: string;

  async function greetings(): Promise<Map<string, { greeting: string; version: string | null }>> {
    const seen = new Map<string, { greeting: string; version: string | null }>();
    for (const node of fleet.nodes.filter((candidate) => candidate.isRunning())) {
      const response = await fetch(`${node.base}/notes/Hello/`, { headers: { 'x-lockstep-consistency': 'linearizable' }, signal: AbortSignal.timeout(10_000) });
      const body = (await response.json()) as { greeting: string };
      seen.set(node.id, { greeting: body.greeting, version: response.headers.get('x-lockstep-version') });
    }
    return seen;
  }

  beforeAll(async () => {
    fleet = await Fleet.start({
      nodes: nodesOf('eu:2,us:2'),
      controlArgs: ['--prepare-timeout', '6s'],
    });
    appDir = writeApp('rollout', { 'schema.graphql': schema, 'config.yaml': 'name: notes\n', 'resources.ts': resources('v1') });
    await fleet.deploy(appDir);
  }, 150_000);

  afterAll(async () => {
    await fleet?.close();
  }, 60_000);

  it('activates a new version once every replica prepared it, and every replica serves it', async () => {
    editAppFile(appDir, 'resources.ts', () => resources('v2'));
    const deploy = await fleet.ctl(['deploy', appDir, '--regions', 'eu,us', '--timeout', '60s']);
    expect(deploy.code, `${deploy.stdout}\n${deploy.stderr}`).toBe(0);
    // The verdicts the switch was decided on: every replica, voters and the learner, prepared.
    for (const node of ['eu1', 'eu2', 'us1', 'us2']) expect(deploy.stdout).toMatch(new RegExp(`${node}\\s+prepared`));
    const status = await fleet.ctlJson<StatusJson>(['status', 'notes']);
    expect(status.activeVersion).toBe(2);
    expect(status.rollout).toBeNull();
    expect(status.history.map((rollout) => `${rollout.version}:${rollout.outcome}`)).toEqual(['1:activated', '2:activated']);
    const served = await greetings();
    expect([...served.values()].map((answer) => answer.greeting)).toEqual(['v2', 'v2', 'v2', 'v2']);
  }, 90_000);

  it('aborts a version that fails to load on the replicas: the previous one keeps serving everywhere', async () => {
    editAppFile(appDir, 'resources.ts', () => `${resources('v3')}\nthrow new Error('v3 cannot start');\n`);
    const deploy = await fleet.ctl(['deploy', appDir, '--regions', 'eu,us', '--timeout', '60s']);
    expect(deploy.code).toBe(1);
    expect(deploy.stderr).toMatch(/could not prepare it: .*v3 cannot start/);
    const status = await fleet.ctlJson<StatusJson>(['status', 'notes']);
    expect(status.activeVersion).toBe(2);
    expect(status.failure?.version).toBe(3);
    expect(status.history.at(-1)).toMatchObject({ version: 3, outcome: 'aborted' });
    const served = await greetings();
    expect([...served.values()].map((answer) => answer.greeting)).toEqual(['v2', 'v2', 'v2', 'v2']);
    const history = await fleet.ctl(['history', 'notes']);
    expect(history.code).toBe(0);
    expect(history.stdout).toMatch(/3\s+\S+\s+operator\s+\S+\s+aborted\s+.*v3 cannot start/);
  }, 90_000);

  it('lets exactly one of two concurrent deploys win; the other exits 1 naming the winner', async () => {
    // Each version takes 3 s to load, so whichever deploy arrives first is still being prepared
    // when the other arrives, however the two clusterctl processes happen to be scheduled.
    const a = writeApp('rollout-a', { 'schema.graphql': schema, 'config.yaml': 'name: notes\n', 'resources.ts': notesResources('v4a', 3_000) });
    const b = writeApp('rollout-b', { 'schema.graphql': schema, 'config.yaml': 'name: notes\n', 'resources.ts': notesResources('v4b', 3_000) });
    const [first, second] = await Promise.all([fleet.ctl(['deploy', a, '--regions', 'eu,us', '--timeout', '60s']), fleet.ctl(['deploy', b, '--regions', 'eu,us', '--timeout', '60s'])]);
    const codes = [first.code, second.code].sort();
    expect(codes, `${first.stdout}${first.stderr}\n${second.stdout}${second.stderr}`).toEqual([0, 1]);
    const loser = first.code === 1 ? first : second;
    expect(loser.stderr).toMatch(/is being rolled out/);
    const winner = first.code === 0 ? 'v4a' : 'v4b';
    const served = await greetings();
    expect([...served.values()].map((answer) => answer.greeting)).toEqual([winner, winner, winner, winner]);
  }, 120_000);

  it('aborts at the prepare deadline when a replica is down, and changes nothing', async () => {
    const learner = fleet.node('us2');
    await learner.kill();
    editAppFile(appDir, 'resources.ts', () => resources('v5'));
    const deploy = await fleet.ctl(['deploy', appDir, '--regions', 'eu,us', '--timeout', '60s']);
    expect(deploy.code).toBe(1);
    expect(deploy.stderr).toMatch(/not prepared within 6000 ms by .*us2/);
    const before = await fleet.ctlJson<StatusJson>(['status', 'notes']);
    expect(before.rollout).toBeNull();
    const served = await greetings();
    expect(new Set([...served.values()].map((answer) => answer.greeting)).size).toBe(1);
    expect([...served.values()][0]?.greeting).toMatch(/^v4[ab]$/);
    // Back up, the replica serves the active version, not the aborted one.
    await learner.start();
    const answer = await pollUntil(
      async () => {
        const response = await fetch(`${learner.base}/notes/Hello/`, { headers: { 'x-lockstep-consistency': 'linearizable' } }).catch(() => undefined);
        return response?.status === 200 ? ((await response.json()) as { greeting: string }) : undefined;
      },
      30_000,
      'us2 to serve again',
    );
    expect(answer.greeting).toMatch(/^v4[ab]$/);
  }, 120_000);

  it('rolls back to an earlier version through the same two phases, and back again by default', async () => {
    const before = await greetings();
    const current = [...before.values()][0]?.greeting as string;
    const rollback = await fleet.ctl(['rollback', 'notes', '--to', '2', '--timeout', '60s']);
    expect(rollback.code, `${rollback.stdout}\n${rollback.stderr}`).toBe(0);
    expect(rollback.stdout).toMatch(/rolling notes back to the code of version 2/);
    const served = await greetings();
    expect([...served.values()].map((answer) => answer.greeting)).toEqual(['v2', 'v2', 'v2', 'v2']);
    const history = await fleet.ctl(['history', 'notes']);
    expect(history.stdout).toMatch(/\(rollback to 2\)\s+\S+\s+operator\s+\S+\s+activated/);
    // Without --to: the version active before this one.
    const back = await fleet.ctl(['rollback', 'notes', '--timeout', '60s']);
    expect(back.code, `${back.stdout}\n${back.stderr}`).toBe(0);
    const again = await greetings();
    expect([...again.values()].map((answer) => answer.greeting)).toEqual([current, current, current, current]);
    const refused = await fleet.ctl(['rollback', 'notes', '--to', '99']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/no version 99/);
  }, 150_000);

  /** GETs of the greeting through every node until `until` settles; returns the statuses. */
  async function loadUntil<T>(until: Promise<T>): Promise<{ result: T; statuses: number[] }> {
    let done = false;
    const statuses: number[] = [];
    const load = (async () => {
      while (!done) {
        for (const node of fleet.nodes.filter((candidate) => candidate.isRunning())) {
          const response = await fetch(`${node.base}/notes/Hello/`, { signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
          if (response !== undefined) {
            statuses.push(response.status);
            await response.text();
          }
        }
        await new Promise((resolveSleep) => setTimeout(resolveSleep, 50));
      }
    })();
    const result = await until;
    done = true;
    await load;
    return { result, statuses };
  }

  it('keeps a version whose validation window passes, and records the figures', async () => {
    editAppFile(appDir, 'resources.ts', () => resources('v6'));
    const { result: deploy, statuses } = await loadUntil(fleet.ctl(['deploy', appDir, '--regions', 'eu,us', '--validate-for', '3s', '--timeout', '60s']));
    expect(deploy.code, `${deploy.stdout}\n${deploy.stderr}`).toBe(0);
    expect(statuses.filter((status) => status >= 500 && status !== 503)).toEqual([]);
    const status = await fleet.ctlJson<StatusJson>(['status', 'notes']);
    expect(status.history.at(-1)).toMatchObject({ outcome: 'activated' });
    expect(status.history.at(-1)?.reason).toMatch(/^validated for 3000 ms: 0 of \d+ requests failed/);
    expect([...(await greetings()).values()].map((answer) => answer.greeting)).toEqual(['v6', 'v6', 'v6', 'v6']);
  }, 90_000);

  it('rolls back by itself a version whose error rate breaks the threshold during validation', async () => {
    editAppFile(appDir, 'resources.ts', () => resources('v7').replace("return { greeting: 'v7' };", "throw new Error('v7 is broken');"));
    const { result: deploy } = await loadUntil(fleet.ctl(['deploy', appDir, '--regions', 'eu,us', '--validate-for', '60s', '--max-error-rate', '0.05', '--timeout', '90s']));
    expect(deploy.code, `${deploy.stdout}\n${deploy.stderr}`).toBe(1);
    expect(deploy.stderr).toMatch(/was rolled back: validation failed: \d+ of \d+ requests failed/);
    const status = await fleet.ctlJson<StatusJson>(['status', 'notes']);
    const [broken, rollback] = status.history.slice(-2);
    expect(broken).toMatchObject({ outcome: 'rolledBack' });
    expect(rollback).toMatchObject({ outcome: 'activated', by: 'control:validation' });
    expect([...(await greetings()).values()].map((answer) => answer.greeting)).toEqual(['v6', 'v6', 'v6', 'v6']);
  }, 150_000);

  it('aborts a rollout when a partition cuts a region off during prepare; healed, every replica serves the old version', async () => {
    const before = [...(await greetings()).values()][0]?.greeting as string;
    const eu = ['eu1', 'eu2'];
    const us = ['us1', 'us2'];
    for (const id of us) await fleet.node(id).setFaults(eu, eu);
    for (const id of eu) await fleet.node(id).setFaults(us, us);
    try {
      editAppFile(appDir, 'resources.ts', () => resources('v-partitioned'));
      const deploy = await fleet.ctl(['deploy', appDir, '--regions', 'eu,us', '--timeout', '60s']);
      expect(deploy.code, `${deploy.stdout}\n${deploy.stderr}`).toBe(1);
      expect(deploy.stderr).toMatch(/not prepared within 6000 ms by .*us/);
    } finally {
      for (const node of fleet.nodes) await node.setFaults([], []);
    }
    const served = await pollUntil(
      async () => {
        const seen = await greetings().catch(() => undefined);
        return seen !== undefined && [...seen.values()].every((answer) => answer.greeting === before) ? seen : undefined;
      },
      30_000,
      'every replica to serve the version active before the partition',
    );
    expect(served.size).toBe(4);
  }, 120_000);
});
