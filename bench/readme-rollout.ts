// Not a benchmark: the script that produces the README's rollout transcript ("A rollout, a real
// run"), so that the documented output can be made again from the code. A control plane and four
// nodes; `notes` with two declared checks (`greets`, `healthy`); a version that takes 4 s to load
// (caught by `status` mid-rollout), one whose check fails, one whose check starts failing during
// its validation window, then the history and the audit trail.
//   npm run build && node dist/bench/readme-rollout.js
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runMain } from './run-main.js';
import { editAppFile, writeApp } from '../test/support/app-files.js';
import { Fleet, nodesOf } from '../test/support/fleet.js';
import { notesResources, notesSchema } from '../test/support/notes-app.js';

const config = (greeting: string): string => `name: notes
checks:
  - name: greets
    path: /Hello/
    contains: { greeting: ${greeting} }
  - name: healthy
    path: /Health/
validation:
  checkEveryMs: 500
`;

const resources = (greeting: string, loadDelayMs = 0): string => `${notesResources(greeting, loadDelayMs)}
import { tables, Problem } from 'lockstep';
export class Health extends Resource {
  async get() {
    if ((await tables.Note.get('broken')) !== undefined) throw new Problem('conflict', { detail: 'the broken flag is set' });
    return { ok: true };
  }
}
`;

const sleep = (ms: number): Promise<void> => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

async function main(): Promise<void> {
  const fleet = await Fleet.start({ nodes: nodesOf('eu:2,us:2') });
  const appDir = writeApp('notes', { 'schema.graphql': notesSchema, 'config.yaml': config('v1'), 'resources.ts': resources('v1') });
  const show = async (args: string[], note = ''): Promise<void> => {
    const result = await fleet.ctl(args);
    const shown = args.join(' ').replace(appDir, './notes').replace(/\/tmp\/\S+\/head\.json/, 'head.json');
    process.stdout.write(`$ clusterctl ${shown}   # exit ${result.code}${note}\n${result.stdout.replace(/\/tmp\/\S+\/head\.json/, 'head.json')}${result.stderr}\n`);
  };
  const version = (greeting: string, loadDelayMs = 0): void => {
    editAppFile(appDir, 'config.yaml', () => config(greeting));
    editAppFile(appDir, 'resources.ts', () => resources(greeting, loadDelayMs));
  };
  try {
    await fleet.deploy(appDir);
    version('v2');
    await show(['deploy', appDir, '--regions', 'eu,us']);
    version('v3', 4_000);
    const slow = fleet.ctl(['deploy', appDir, '--regions', 'eu,us']);
    await sleep(2_500);
    await show(['status', 'notes']);
    const slowResult = await slow;
    process.stdout.write(`$ clusterctl deploy ./notes --regions eu,us   # exit ${slowResult.code} (the deploy that status caught)\n${slowResult.stdout}${slowResult.stderr}\n`);
    editAppFile(appDir, 'config.yaml', () => config('v4'));
    editAppFile(appDir, 'resources.ts', () => resources('v4-typo'));
    await show(['deploy', appDir, '--regions', 'eu,us']);
    version('v5');
    const validated = show(['deploy', appDir, '--regions', 'eu,us', '--validate-for', '60s']);
    const node = fleet.nodes[0];
    if (node === undefined) throw new Error('no node');
    for (;;) {
      const answer = (await (await fetch(`${node.base}/notes/Hello/`)).json()) as { greeting?: string };
      if (answer.greeting === 'v5') break;
      await sleep(100);
    }
    await fetch(`${node.base}/notes/Note/broken`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: 'broken', text: 'trips the check' }) });
    await validated;
    await show(['history', 'notes']);
    // The audit trail of the same run (the README's "Audit trail" section).
    const checkpoint = join(mkdtempSync(join(tmpdir(), 'lockstep-readme-')), 'head.json');
    await show(['audit', '--app', 'notes', '--limit', '8']);
    await show(['audit', 'checkpoint', '--out', checkpoint]);
    await show(['audit', 'verify', '--checkpoint', checkpoint]);
  } finally {
    await fleet.close();
  }
}

runMain(main);
