// The long fault campaign: a real cluster of `lockstep node` processes under random faults for
// N minutes, round after round. Each round runs KV clients through every node while one or more
// random faults are injected and healed, ends with a linearizable read of every key, and checks
// the history. (Lives under bench/ because tsconfig compiles src, bench and test only.)
//
// Availability: for every fault, the longest stretch of wall time with no successful client
// operation, from the fault's injection until the first success after the cluster settled
// (definition in test/support/availability.ts); the summary gives it per fault kind.
//
//   npx tsc -p tsconfig.json && node dist/bench/cluster-fault-campaign.js --minutes 10 [--nodes 3|5]
//     [--faults killLeaderRestart,pauseLeader]   (only these kinds; default every kind)
//
// Exit status: 0 every round linearizable; 1 a violation (this includes a lost acknowledged
// write: the final reads must be explained by the acknowledged writes); 2 the cluster did not
// recover from a fault in time (availability, not safety); 3 bad arguments.
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Cluster } from '../test/support/cluster.js';
import { longestNoSuccess, StretchesByKind, type FaultWindow } from '../test/support/availability.js';
import { faults, settle, type Fault } from '../test/support/cluster-faults.js';
import { describeResult, runScenario } from '../test/support/cluster-scenario.js';

const minutesMax = 24 * 60;
/** Faults chained in one round at most: overlapping recoveries are where bugs hide. */
const faultsPerRoundMax = 3;
const nodeRequestTimeoutMs = 2_000;
const clientRequestTimeoutMs = nodeRequestTimeoutMs + 3_000;
const checkTimeoutMs = 120_000;
/** The availability target for a single-node fault; stretches past it are marked in the summary. */
const noSuccessStretchMsTarget = 1_500;

function usage(message: string): never {
  process.stderr.write(`cluster-fault-campaign: ${message}\nusage: node dist/bench/cluster-fault-campaign.js --minutes 10 [--nodes 3|5] [--clients 6] [--keys 5] [--faults a,b]\n`);
  process.exit(3);
}

function positive(name: string, text: string, max: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1 || value > max) usage(`--${name} must be an integer in 1..${max}`);
  return value;
}

function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)] as T;
}

async function main(): Promise<number> {
  let values;
  try {
    values = parseArgs({
      options: {
        minutes: { type: 'string', default: '10' },
        nodes: { type: 'string', default: '3' },
        clients: { type: 'string', default: '6' },
        keys: { type: 'string', default: '5' },
        faults: { type: 'string', default: Object.keys(faults).join(',') },
      },
    }).values;
  } catch (error) {
    usage(error instanceof Error ? error.message : String(error));
  }
  const minutes = positive('minutes', values.minutes, minutesMax);
  const size = positive('nodes', values.nodes, 7);
  if (size % 2 === 0) usage('--nodes must be odd');
  const clients = positive('clients', values.clients, 64);
  const keyCount = positive('keys', values.keys, 100);
  const endAt = Date.now() + minutes * 60_000;
  const names = values.faults.split(',').filter((name) => name !== '');
  const unknownNames = names.filter((name) => !(name in faults));
  if (names.length === 0 || unknownNames.length > 0) usage(`--faults takes some of ${Object.keys(faults).join(', ')}`);

  const cluster = await Cluster.start({ size, tickMs: 30, electionTicks: 10, requestTimeoutMs: nodeRequestTimeoutMs });
  const stopOnSignal = (): void => {
    void cluster.close().then(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  let rounds = 0;
  let totalOps = 0;
  let totalFaults = 0;
  let inconclusive = 0;
  let exitCode = 0;
  const stretches = new StretchesByKind();
  try {
    while (Date.now() < endAt) {
      rounds++;
      const chosen = Array.from({ length: 1 + Math.floor(Math.random() * faultsPerRoundMax) }, () => pick(names));
      const holdMs = 500 + Math.floor(Math.random() * 2_500);
      let result;
      const windows: (FaultWindow & { kind: string })[] = [];
      try {
        await settle(cluster);
        result = await runScenario({
          name: `round ${rounds} [${chosen.join(' + ')}] hold ${holdMs} ms`,
          cluster,
          clients,
          keyCount,
          warmupMs: 500 + Math.floor(Math.random() * 1_000),
          cooldownMs: 1_000,
          requestTimeoutMs: clientRequestTimeoutMs,
          checkTimeoutMs,
          async fault(target) {
            for (const name of chosen) windows.push({ kind: name, ...(await (faults[name] as Fault)(target, { holdMs })) });
          },
        });
      } catch (error) {
        process.stdout.write(`round ${rounds}: the cluster did not recover: ${error instanceof Error ? error.message : String(error)}\n${cluster.describeOutput()}\n`);
        exitCode = 2;
        break;
      }
      totalOps += result.verdict.operations;
      totalFaults += chosen.length;
      const roundStretches = windows.map((window, i) => {
        const stretch = longestNoSuccess(result.successesMs, window, windows[i + 1]?.injectedMs);
        stretches.add(window.kind, stretch, `round ${rounds}`);
        return `${window.kind} ${Math.round(stretch.longestMs)}${stretch.endedBy === 'success' ? '' : '+'} ms`;
      });
      process.stdout.write(`${describeResult(result)}; longest no-success stretch: ${roundStretches.join(', ')}; faults so far ${totalFaults}\n`);
      if (result.verdict.verdict === 'illegal') {
        // The history and every node's kept output, so the violation can be analysed afterwards.
        const reportPath = join(tmpdir(), `lockstep-campaign-violation-${Date.now()}-round${rounds}.json`);
        const outputs = Object.fromEntries(cluster.nodes.map((node) => [node.id, node.output()]));
        writeFileSync(reportPath, JSON.stringify({ round: result.name, reason: result.verdict.reason, windows, history: result.history, outputs }, null, 1));
        process.stdout.write(`VIOLATION in round ${rounds} (history and node output in ${reportPath})\n${cluster.describeOutput()}\n`);
        exitCode = 1;
        break;
      }
      if (result.verdict.verdict === 'unknown') inconclusive++;
    }
  } finally {
    await cluster.close();
  }
  process.stdout.write(
    `campaign: ${rounds} rounds, ${totalFaults} faults, ${totalOps} operations checked, ` +
      `${inconclusive} rounds inconclusive (checker budget), verdict ${exitCode === 0 ? 'linearizable' : exitCode === 1 ? 'VIOLATION' : 'NOT RECOVERED'}\n` +
      `availability: longest stretch with no successful client operation per fault, from its injection to the first success after the cluster settled ` +
      `(target under ${noSuccessStretchMsTarget} ms for a single-node fault; killAllRestart takes every node down):\n` +
      `${stretches.describe(noSuccessStretchMsTarget).join('\n')}\n`,
  );
  return exitCode;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`cluster-fault-campaign: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(2);
  },
);
