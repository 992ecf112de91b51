// A fault scenario: KV clients run against a cluster while a fault is injected and healed; then a
// final linearizable read of every key, and the whole history goes through the checker.
// Shared by test/cluster/faults.test.ts and the fault campaign (bench/cluster-fault-campaign.ts).
import { UNKNOWN, type KvOperation } from '../../src/testing/linearizability/index.js';
import { type Cluster } from './cluster.js';
import { appendFinalReads, checkHistory, startKvLoad, type KvCounts, type Verdict } from './cluster-kv.js';
import { sleep } from './cluster.js';

export interface ScenarioOptions {
  readonly name: string;
  readonly cluster: Cluster;
  readonly clients: number;
  readonly keyCount: number;
  /** Load before the fault starts. */
  readonly warmupMs: number;
  /** Load after `fault` returned (the cluster is healed by then). */
  readonly cooldownMs: number;
  /** Per request; must exceed the nodes' request timeout. */
  readonly requestTimeoutMs: number;
  /** Injects and heals the fault; resolves once every node is back. */
  fault(cluster: Cluster): Promise<unknown>;
  readonly checkTimeoutMs: number;
}

export interface ScenarioResult {
  readonly name: string;
  readonly counts: KvCounts;
  readonly verdict: Verdict;
  readonly durationMs: number;
  /** When the load's clients got a definite answer (performance.now() ms, ascending); the
   *  final reads are not included. For test/support/availability.ts. */
  readonly successesMs: readonly number[];
  /** The checked history, final reads included, for a report when the verdict is not legal. */
  readonly history: readonly KvOperation[];
}

/** Upper bound on one scenario's load, whatever the fault does. */
const loadDeadlineMs = 120_000;
/** How long the final reads may take to find a working quorum. */
const finalReadsTimeoutMs = 30_000;

let scenarioSequence = 0;

export async function runScenario(options: ScenarioOptions): Promise<ScenarioResult> {
  const started = Date.now();
  const cluster = options.cluster;
  // Fresh keys per scenario: each history starts from empty registers.
  const scenarioKey = `${options.name.replace(/[^A-Za-z0-9]/g, '')}${++scenarioSequence}${Date.now().toString(36)}`;
  const keys = Array.from({ length: options.keyCount }, (_unused, i) => `${scenarioKey}-k${i}`);
  const nodes = [...cluster.nodes];
  const load = startKvLoad({ nodes, clients: options.clients, keys, requestTimeoutMs: options.requestTimeoutMs, deadlineMs: loadDeadlineMs });
  let faultError: unknown;
  try {
    await sleep(options.warmupMs);
    await options.fault(cluster);
    await sleep(options.cooldownMs);
  } catch (error) {
    faultError = error;
  } finally {
    load.stop();
  }
  await load.done;
  if (faultError !== undefined) throw faultError;
  const successesMs = load.history.filter((operation) => operation.output !== UNKNOWN).map((operation) => operation.returnTime).sort((a, b) => a - b);
  await appendFinalReads(load.history, cluster.running(), keys, finalReadsTimeoutMs);
  const verdict = checkHistory(load.history, options.checkTimeoutMs);
  return { name: options.name, counts: load.counts, verdict, durationMs: Date.now() - started, successesMs, history: load.history };
}

export function describeResult(result: ScenarioResult): string {
  const c = result.counts;
  return (
    `${result.name}: ${result.verdict.verdict}, checked ${result.verdict.operations} ops ` +
    `(${c.acknowledgedWrites} acknowledged writes, ${c.unknown} unknown, ${c.notApplied} not applied, ${c.abandoned} abandoned 409) in ${result.durationMs} ms` +
    (result.verdict.reason === undefined ? '' : ` - ${result.verdict.reason}`)
  );
}
