// The whole cluster - control plane and every node - killed in the middle of a rollout (the
// new version staged, the replicas still preparing it) and started again on its data: the
// rollout resumes from the control log and ends with exactly one version active and served by
// every replica, and its record says what happened.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editAppFile, writeApp } from '../support/app-files.js';
import { pollUntil } from '../support/cluster.js';
import { Fleet, nodesOf } from '../support/fleet.js';
import { notesFiles, notesResources, waitForStaged } from '../support/notes-app.js';

describe('the whole cluster restarted mid-rollout', () => {
  let fleet: Fleet;
  let appDir: string;

  beforeAll(async () => {
    fleet = await Fleet.start({ nodes: nodesOf('eu:2,us:1') });
    appDir = writeApp('restart-rollout', notesFiles('v1'));
    await fleet.deploy(appDir);
  }, 150_000);

  afterAll(async () => {
    await fleet?.close();
  }, 60_000);

  it('ends with one version active and served everywhere, and the record says so', async () => {
    // Version 2 takes 4 s to load, so the kill lands while every replica is preparing it.
    editAppFile(appDir, 'resources.ts', () => notesResources('v2', 4_000));
    const deploy = fleet.ctl(['deploy', appDir, '--regions', 'eu,us', '--timeout', '20s']);
    await waitForStaged(fleet, 'notes');
    await Promise.all([...fleet.control, ...fleet.nodes].map((process) => process.kill()));
    await deploy; // its control plane is gone: it gives up (exit 3) - the rollout is in the log
    await Promise.all(fleet.control.map((member) => member.start()));
    await Promise.all(fleet.nodes.map((node) => node.start()));
    const status = await pollUntil(
      async () => {
        const body = await fleet.ctlJson<{ rollout: unknown; converged: boolean; activeVersion: number; history: { version: number; outcome: string; reason: string | null }[] }>(['status', 'notes']).catch(() => undefined);
        return body !== undefined && body.rollout === null && body.converged ? body : undefined;
      },
      90_000,
      'the rollout to end after the restart',
    );
    const record = status.history.at(-1);
    expect(record?.version).toBe(2);
    expect(['activated', 'aborted']).toContain(record?.outcome);
    console.log(`restart mid-rollout: version 2 ${record?.outcome ?? '?'}${record?.reason === null || record?.reason === undefined ? '' : ` (${record.reason})`}`);
    const expected = record?.outcome === 'activated' ? 'v2' : 'v1';
    for (const node of fleet.nodes) {
      const answer = await pollUntil(
        async () => {
          const response = await fetch(`${node.base}/notes/Hello/`, { headers: { 'x-lockstep-consistency': 'linearizable' } }).catch(() => undefined);
          return response?.status === 200 ? ((await response.json()) as { greeting: string }) : undefined;
        },
        60_000,
        `${node.id} to serve notes`,
      );
      expect(answer.greeting, `${node.id}; rollout ${JSON.stringify(record)}`).toBe(expected);
    }
  }, 240_000);
});
