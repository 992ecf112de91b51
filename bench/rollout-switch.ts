// How one two-phase switch unfolds under the simulated wide-area matrix (eu-us 40 ms, eu-ap
// 120 ms, us-ap 90 ms one way): a control plane and four nodes (eu1, eu2, us1, us2) with
// --simulate-wan default, a small app deployed with --regions eu,us, then version after version
// deployed while every replica is polled (local session reads every 5 ms). For each switch it
// reports how long the whole deploy took (stage, prepare everywhere, activate), and when each
// replica first answered with the new version relative to the first one that did: the spread
// is the time the Activate entry takes to reach and be applied on every replica (one commit
// round of the app group plus apply).
//   npm run build && node dist/bench/rollout-switch.js [--switches 5]
import { parseArgs } from 'node:util';
import { runMain } from './run-main.js';
import { editAppFile, writeApp } from '../test/support/app-files.js';
import { Fleet, nodesOf } from '../test/support/fleet.js';
import { notesFiles, notesResources } from '../test/support/notes-app.js';

const pollEveryMs = 5;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { switches: { type: 'string', default: '5' } } });
  const switches = Number(values.switches);
  const fleet = await Fleet.start({ nodes: nodesOf('eu:2,us:2'), nodeArgs: ['--simulate-wan', 'default'] });
  try {
    const appDir = writeApp('rollout-switch', notesFiles('v1'));
    await fleet.deploy(appDir);
    const rows: string[] = [];
    for (let i = 2; i <= switches + 1; i++) {
      const greeting = `v${i}`;
      const firstSeen = new Map<string, number>();
      let polling = true;
      const pollers = fleet.nodes.map(async (node) => {
        while (polling) {
          const response = await fetch(`${node.base}/notes/Hello/`).catch(() => undefined);
          if (response?.status === 200) {
            const body = (await response.json()) as { greeting: string };
            if (body.greeting === greeting && !firstSeen.has(node.id)) firstSeen.set(node.id, performance.now());
          } else {
            await response?.body?.cancel();
          }
          await new Promise((resolve) => setTimeout(resolve, pollEveryMs));
        }
      });
      editAppFile(appDir, 'resources.ts', () => notesResources(greeting));
      const started = performance.now();
      const deploy = await fleet.ctl(['deploy', appDir, '--regions', 'eu,us', '--timeout', '60s']);
      const deployMs = performance.now() - started;
      // Let the last replicas' polls land.
      const deadline = performance.now() + 5_000;
      while (firstSeen.size < fleet.nodes.length && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      polling = false;
      await Promise.all(pollers);
      if (deploy.code !== 0) throw new Error(`deploy of ${greeting} failed: ${deploy.stderr}`);
      const earliest = Math.min(...firstSeen.values());
      const offsets = fleet.nodes.map((node) => `${node.id} +${((firstSeen.get(node.id) ?? Number.NaN) - earliest).toFixed(0)}`);
      const spread = Math.max(...firstSeen.values()) - earliest;
      rows.push(`| ${greeting} | ${deployMs.toFixed(0)} | ${offsets.join(', ')} | ${spread.toFixed(0)} |`);
    }
    const status = await fleet.ctlJson<{ voters: string[]; group: { leader: string } }>(['status', 'notes']);
    process.stdout.write(`voters ${status.voters.join(', ')}, leader ${status.group.leader}; replicas polled every ${pollEveryMs} ms\n\n`);
    process.stdout.write('| version | clusterctl deploy, ms | first answer with it, per replica (ms after the first) | spread, ms |\n|---|---|---|---|\n');
    process.stdout.write(`${rows.join('\n')}\n`);
  } finally {
    await fleet.close();
  }
}

runMain(main);
