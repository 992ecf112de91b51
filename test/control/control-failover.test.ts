// A three-member control plane whose leader is killed in the middle of a move: the new leader
// finds the step the old one started in the control log, sees the app group applied it (or
// takes it again), and finishes the move. The app keeps its three voters in eu/us throughout.
// Killed between the stage and the activate of a rollout, the new leader finishes the rollout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editAppFile, writeApp } from '../support/app-files.js';
import { pollUntil, shopAppDir } from '../support/cluster.js';
import { Fleet, nodesOf } from '../support/fleet.js';
import { notesFiles, notesResources, waitForStaged } from '../support/notes-app.js';

interface StatusJson {
  readonly voters: string[];
  readonly learners: string[];
  readonly converged: boolean;
  readonly group: { leader: string; voters: string[] } | null;
  readonly steps: { index: number; kind: string; node: string; outcome: string; detail: string }[];
}

describe('control plane: a leader killed mid-move', () => {
  let fleet: Fleet;

  beforeAll(async () => {
    fleet = await Fleet.start({
      controlMembers: 3,
      nodes: nodesOf('eu:2,us:2'),
    });
    await fleet.deploy(shopAppDir);
  }, 150_000);

  afterAll(async () => {
    await fleet?.close();
  }, 60_000);

  it('resumes the move under the new leader', async () => {
    const before = await fleet.ctlJson<StatusJson>(['status', 'shop']);
    const victim = before.voters.find((id) => id !== before.group?.leader) as string;
    const lastIndex = Math.max(0, ...before.steps.map((step) => step.index));
    const drain = await fleet.ctl(['drain', victim, '--no-wait']);
    expect(drain.code, drain.stderr).toBe(0);
    // Wait until the move has started (a step recorded after the drain), then kill the leader.
    await pollUntil(
      async () => {
        const status = await fleet.ctlJson<StatusJson>(['status', 'shop']);
        return status.steps.some((step) => step.index > lastIndex && step.outcome === 'started') ? true : undefined;
      },
      30_000,
      'the move to start',
    );
    const oldLeader = await fleet.controlLeader();
    await oldLeader.kill();
    const newLeader = await fleet.controlLeader();
    expect(newLeader.id).not.toBe(oldLeader.id);
    const after = await pollUntil(
      async () => {
        const status = await fleet.ctlJson<StatusJson>(['status', 'shop']).catch(() => undefined);
        return status !== undefined && status.converged && !status.voters.includes(victim) && !status.learners.includes(victim) ? status : undefined;
      },
      90_000,
      'the move to finish under the new leader',
    );
    expect(after.voters).toHaveLength(3);
    const moveSteps = after.steps.filter((step) => step.index > lastIndex);
    console.log(`control failover: leader ${oldLeader.id} killed mid-move, ${newLeader.id} finished it; steps: ${moveSteps.map((step) => `${step.index} ${step.outcome} ${step.detail}`).join('; ')}`);
    // Every step started was finished (done), and the victim was removed.
    expect(moveSteps.some((step) => step.kind === 'remove' && step.node === victim && step.outcome === 'done')).toBe(true);
    const nodes = await fleet.ctlJson<{ nodes: { id: string; state: string }[] }>(['nodes']);
    expect(nodes.nodes.find((node) => node.id === victim)?.state).toBe('drained');
    // The killed member comes back and catches up.
    await oldLeader.start();
    const health = await pollUntil(
      async () => {
        const response = await fetch(`${oldLeader.base}/_health`).catch(() => undefined);
        const body = response === undefined ? undefined : ((await response.json()) as { leader: string | null });
        return body?.leader !== null && body?.leader !== undefined ? body : undefined;
      },
      30_000,
      'the restarted member to know the leader',
    );
    expect(health.leader).not.toBeNull();
  }, 180_000);

  it('resumes a rollout when the control-plane leader dies between stage and activate', async () => {
    const appDir = writeApp('failover-rollout', notesFiles('v1'));
    const first = await fleet.ctl(['deploy', appDir, '--regions', 'eu,us', '--timeout', '90s']);
    expect(first.code, first.stderr).toBe(0);
    // Version 2 takes 3 s to load on every replica (a top-level await), which holds the rollout
    // between its stage and its activate long enough to kill the leader there.
    editAppFile(appDir, 'resources.ts', () => notesResources('v2', 3_000));
    const deploy = fleet.ctl(['deploy', appDir, '--regions', 'eu,us', '--timeout', '90s']);
    // Staged (the group has the version) and not yet activated: kill the control-plane leader.
    await waitForStaged(fleet, 'notes');
    const leader = await fleet.controlLeader();
    await leader.kill();
    const outcome = await deploy;
    expect(outcome.code, `${outcome.stdout}\n${outcome.stderr}`).toBe(0);
    const status = await fleet.ctlJson<{ activeVersion: number; history: { version: number; outcome: string }[] }>(['status', 'notes']);
    expect(status.activeVersion).toBe(2);
    expect(status.history.map((rollout) => `${rollout.version}:${rollout.outcome}`)).toEqual(['1:activated', '2:activated']);
    for (const node of fleet.nodes) {
      const answer = await pollUntil(
        async () => {
          const response = await fetch(`${node.base}/notes/Hello/`, { headers: { 'x-lockstep-consistency': 'linearizable' } });
          return response.status === 200 ? ((await response.json()) as { greeting: string }) : undefined;
        },
        30_000,
        `${node.id} to serve notes`,
      );
      expect(answer.greeting).toBe('v2');
    }
    await leader.start();
  }, 180_000);
});
