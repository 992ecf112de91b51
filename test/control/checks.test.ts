// The app's declared checks (config.yaml `checks`) in a fleet-wide switch, on real processes: a
// version whose check fails on the replicas is aborted and changes nothing; a check that starts
// failing during the validation window rolls the version back by itself; and a replica that is
// down when the switch happens comes back serving only the new version, once it has prepared
// it (never the old one after the switch).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editAppFile, writeApp } from '../support/app-files.js';
import { pollUntil } from '../support/cluster.js';
import { Fleet, nodesOf } from '../support/fleet.js';
import { notesResources, notesSchema } from '../support/notes-app.js';

interface StatusJson {
  readonly activeVersion: number;
  readonly previousVersion: number | null;
  readonly history: { version: number; outcome: string; reason: string | null; by: string; verdicts: Record<string, { phase: string; step?: string; reason?: string }> | null }[];
  readonly members: { node: string; servingVersion: number | null; rollout: { phase: string; step?: string } | null }[];
}

/** Hello answers the greeting; Health fails while a Note with id 'broken' exists. */
function resources(greeting: string, loadDelayMs = 0): string {
  return `${notesResources(greeting, loadDelayMs)}
import { tables, Problem } from 'lockstep';
export class Health extends Resource {
  async get() {
    if ((await tables.Note.get('broken')) !== undefined) throw new Problem('conflict', { detail: 'the broken flag is set' });
    return { ok: true };
  }
}
`;
}

const checksConfig = `name: notes
checks:
  - name: greets
    path: /Hello/
    contains: { greeting: GREETING }
  - name: healthy
    path: /Health/
    status: 200
  - name: a note can be written
    method: PUT
    path: /Note/check-probe
    body: { id: check-probe, text: written by a check }
validation:
  checkEveryMs: 300
`;

describe('declared checks in a fleet-wide switch', () => {
  let fleet: Fleet;
  let appDir: string;

  async function greetings(): Promise<string[]> {
    const seen: string[] = [];
    for (const node of fleet.nodes.filter((candidate) => candidate.isRunning())) {
      const response = await fetch(`${node.base}/notes/Hello/`, { headers: { 'x-lockstep-consistency': 'linearizable' }, signal: AbortSignal.timeout(10_000) });
      seen.push(((await response.json()) as { greeting: string }).greeting);
    }
    return seen;
  }

  beforeAll(async () => {
    fleet = await Fleet.start({ nodes: nodesOf('eu:2,us:2'), controlArgs: ['--prepare-timeout', '20s'] });
    appDir = writeApp('checks', { 'schema.graphql': notesSchema, 'config.yaml': checksConfig.replace('GREETING', 'v1'), 'resources.ts': resources('v1') });
    await fleet.deploy(appDir);
  }, 150_000);

  afterAll(async () => {
    await fleet?.close();
  }, 60_000);

  it('passes a version whose checks pass on every replica, and their writes are discarded', async () => {
    editAppFile(appDir, 'config.yaml', () => checksConfig.replace('GREETING', 'v2'));
    editAppFile(appDir, 'resources.ts', () => resources('v2'));
    const deploy = await fleet.ctl(['deploy', appDir, '--regions', 'eu,us', '--timeout', '60s']);
    expect(deploy.code, `${deploy.stdout}\n${deploy.stderr}`).toBe(0);
    for (const node of ['eu1', 'eu2', 'us1', 'us2']) expect(deploy.stdout).toMatch(new RegExp(`${node}\\s+prepared \\(checks 3/3\\)`));
    expect(await greetings()).toEqual(['v2', 'v2', 'v2', 'v2']);
    // The PUT check ran on every replica, against its own state, and proposed nothing.
    const probe = await fetch(`${fleet.nodes[0]?.base ?? ''}/notes/Note/check-probe`, { headers: { 'x-lockstep-consistency': 'linearizable' } });
    expect(probe.status).toBe(404);
  }, 90_000);

  it('aborts a version whose check fails on the replicas: nothing changes, and the reason names the check', async () => {
    editAppFile(appDir, 'config.yaml', () => checksConfig.replace('GREETING', 'v3'));
    editAppFile(appDir, 'resources.ts', () => resources('v3-wrong'));
    const deploy = await fleet.ctl(['deploy', appDir, '--regions', 'eu,us', '--timeout', '60s']);
    expect(deploy.code).toBe(1);
    expect(deploy.stderr).toMatch(/could not prepare it: check 'greets' failed: GET \/Hello\/: \$\.greeting is "v3-wrong", not "v3"/);
    const status = await fleet.ctlJson<StatusJson>(['status', 'notes']);
    expect(status.activeVersion).toBe(2);
    const aborted = status.history.at(-1);
    expect(aborted).toMatchObject({ version: 3, outcome: 'aborted' });
    expect(Object.values(aborted?.verdicts ?? {}).map((verdict) => `${verdict.phase}:${verdict.step ?? ''}`)).toContain('failed:checks');
    expect(await greetings()).toEqual(['v2', 'v2', 'v2', 'v2']);
  }, 90_000);

  it('rolls a version back by itself when a check starts failing during its validation window', async () => {
    editAppFile(appDir, 'config.yaml', () => checksConfig.replace('GREETING', 'v4'));
    editAppFile(appDir, 'resources.ts', () => resources('v4'));
    const deploy = fleet.ctl(['deploy', appDir, '--regions', 'eu,us', '--validate-for', '60s', '--timeout', '90s']);
    // Once v4 serves everywhere, live data makes its health check fail.
    await pollUntil(async () => ((await greetings().catch(() => [])).every((greeting) => greeting === 'v4') ? true : undefined), 60_000, 'v4 to serve everywhere');
    const flag = await fetch(`${fleet.nodes[0]?.base ?? ''}/notes/Note/broken`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'broken', text: 'trips the check' }) });
    expect(flag.status).toBeLessThan(300);
    const ended = await deploy;
    expect(ended.code, `${ended.stdout}\n${ended.stderr}`).toBe(1);
    expect(ended.stderr).toMatch(/was rolled back: validation failed: .*check 'healthy' failed: GET \/Health\/ answered 409, not 200: the broken flag is set/);
    const status = await fleet.ctlJson<StatusJson>(['status', 'notes']);
    const [broken, rollback] = status.history.slice(-2);
    expect(broken).toMatchObject({ version: 4, outcome: 'rolledBack' });
    expect(rollback).toMatchObject({ outcome: 'activated', by: 'control:validation' });
    expect(await greetings()).toEqual(['v2', 'v2', 'v2', 'v2']);
    await fetch(`${fleet.nodes[0]?.base ?? ''}/notes/Note/broken`, { method: 'DELETE' });
  }, 150_000);

  it('a replica down when the switch happens comes back serving only the new version, after preparing it', async () => {
    const learner = fleet.node('us2');
    const others = ['eu1', 'eu2', 'us1'];
    editAppFile(appDir, 'config.yaml', () => checksConfig.replace('GREETING', 'v5'));
    // Loading v5 takes 3 s, so the learner can be cut off between applying Stage and Activate.
    editAppFile(appDir, 'resources.ts', () => resources('v5', 3_000));
    const deploy = fleet.ctl(['deploy', appDir, '--regions', 'eu,us', '--timeout', '90s']);
    await pollUntil(
      async () => {
        const status = await fleet.ctlJson<StatusJson>(['status', 'notes']).catch(() => undefined);
        return status?.members.find((member) => member.node === 'us2')?.rollout?.phase === 'preparing' ? true : undefined;
      },
      30_000,
      'us2 to apply the Stage entry',
    );
    // It keeps preparing and reporting to the control plane, but hears nothing of its group.
    await learner.setFaults(others, others);
    await pollUntil(
      async () => {
        const status = await fleet.ctlJson<StatusJson>(['status', 'notes']).catch(() => undefined);
        return status?.history.at(-1)?.version === 6 ? status : undefined;
      },
      30_000,
      'the switch to version 6',
    );
    const decided = await fleet.ctlJson<StatusJson>(['status', 'notes']);
    expect(decided.history.at(-1)).toMatchObject({ version: 6, outcome: 'activated' });
    expect(decided.history.at(-1)?.verdicts?.us2?.phase).toBe('prepared');
    // Switched everywhere else; us2 did not hear of it, and goes down now.
    await learner.kill();
    // Back up with the old version on disk and the Activate entry still to apply.
    await learner.start();
    const answers: string[] = [];
    const served = await pollUntil(
      async () => {
        const response = await fetch(`${learner.base}/notes/Hello/`, { headers: { 'x-lockstep-consistency': 'linearizable' }, signal: AbortSignal.timeout(10_000) }).catch(() => undefined);
        if (response === undefined) return undefined;
        if (response.status === 503) {
          answers.push(`503 retry-after=${response.headers.get('retry-after') ?? 'none'}`);
          await response.text();
          return undefined;
        }
        const body = (await response.json()) as { greeting?: string };
        answers.push(`${response.status} ${body.greeting ?? ''} v${response.headers.get('x-lockstep-version') ?? '?'}`);
        return response.status === 200 ? body.greeting : undefined;
      },
      60_000,
      'us2 to serve again',
    );
    expect(served).toBe('v5');
    // Not one answer from the old version; refusals say when to come back.
    for (const answer of answers) expect(answer).toMatch(/^(200 v5 v\d+|503 retry-after=\d+)$/);
    const status = await fleet.ctlJson<StatusJson>(['status', 'notes']);
    expect(status.previousVersion).toBe(5);
    // The deploy ends once every replica that is up serves the new version.
    const deployed = await deploy;
    expect(deployed.code, `${deployed.stdout}\n${deployed.stderr}`).toBe(0);
    expect(deployed.stdout).toMatch(/us2\s+prepared/);
    const after = await fleet.ctlJson<StatusJson>(['status', 'notes']);
    expect(after.members.map((member) => `${member.node}:${member.servingVersion ?? '-'}`)).toEqual(['eu1:6', 'eu2:6', 'us1:6', 'us2:6']);
  }, 180_000);
});
