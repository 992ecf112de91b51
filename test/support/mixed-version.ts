// The mixed-version checker: a steady mixed load (reads and writes through every node, WebSocket
// subscribers on every node) while an app goes through four rollouts - v1 to v2 (a schema change
// and a resource change that alters answers), a rollback to v1, v3 whose declared check fails
// (aborted), and v4 whose error rate trips its validation (rolled back by the control plane).
// Afterwards it reads which version each log index belongs to (every version's Activate index,
// from the app's own state) and checks every answer and every subscriber event against it.
// Shared by bench/mixed-version.ts (long phases, figures for bench/RESULTS.md) and
// test/control/mixed-version.test.ts (short phases).
import { readBundle } from '../../src/app/bundle.js';
import { openWebSocket, type ChangeStream } from './change-stream.js';
import { editAppFile, writeApp } from './app-files.js';
import { pollUntil } from './cluster.js';
import type { Fleet } from './fleet.js';

export const mixedAppName = 'mixed';
/** Records the load reads and writes (written before the load starts, so reads never miss). */
const keyCount = 100;

const schemaV1 = `type Item @table {
  id: ID @primaryKey
  value: Int!
}
`;
// v2 adds an indexed attribute (an index built at the switch) to the same table.
const schemaV2 = `type Item @table {
  id: ID @primaryKey
  value: Int!
  label: String @indexed
}
`;

type Code = 'v1' | 'v2' | 'v3' | 'v4';

function resources(code: Code): string {
  const item =
    code === 'v2'
      ? `export class Item extends tables.Item {
  // v2 answers a record with its value doubled beside it.
  async get(target) {
    const record = await super.get(target);
    return record === undefined || Array.isArray(record) ? record : { ...record, doubled: record.value * 2 };
  }
}
`
      : '';
  const info =
    code === 'v4'
      ? `let calls = 0;
export class Info extends Resource {
  // v4 is broken: every other answer is a server error.
  async get() {
    calls += 1;
    if (calls % 2 === 0) throw new Error('v4 fails every other request');
    return { code: 'v4' };
  }
}
`
      : `export class Info extends Resource {
  async get() {
    return { code: '${code}' };
  }
}
`;
  return `import { Resource, tables } from 'lockstep';\n${item}${info}`;
}

function config(code: Code): string {
  // v3 declares a check its own code does not pass.
  const expected = code === 'v3' ? 'v3-as-declared' : code;
  // The first version prepares on an empty app: a record to read exists only from v2 on.
  const recordCheck = code === 'v1' ? '' : '  - name: a record reads\n    path: /Item/k0\n';
  return `name: ${mixedAppName}
checks:
  - name: info answers its code
    path: /Info/
    contains: { code: ${expected} }
${recordCheck}validation:
  checkEveryMs: 500
`;
}

export function mixedFiles(code: Code): Record<string, string> {
  return { 'schema.graphql': code === 'v2' ? schemaV2 : schemaV1, 'resources.ts': resources(code), 'config.yaml': config(code) };
}

/** One answer the load got. */
interface Answer {
  readonly node: string;
  readonly kind: 'read' | 'write' | 'info';
  readonly status: number;
  readonly version: number | undefined;
  readonly index: number | undefined;
  /** Info answers: the code that answered; reads: whether the record came with `doubled`. */
  readonly code?: string;
  readonly doubled?: boolean;
  readonly endedMs: number;
  readonly error?: string;
}

interface Subscriber {
  readonly node: string;
  readonly stream: ChangeStream;
}

export interface RolloutWindow {
  readonly name: string;
  readonly command: readonly string[];
  readonly expectedExit: number;
  readonly startedMs: number;
  endedMs: number;
  exit: number;
  output: string;
  /** How long clusterctl took, ms. */
  commandMs: number;
}

export interface MixedVersionOptions {
  /** How long the load runs between rollouts (and before the first). */
  readonly phaseMs: number;
  /** Concurrent request loops per node. */
  readonly workersPerNode: number;
  /** Pause of each request loop between requests (0: back to back). */
  readonly pauseMs: number;
  /** How often the per-node poller asks for the resource (the switch latency's resolution). */
  readonly pollEveryMs: number;
  readonly regions: string;
  readonly log?: (line: string) => void;
}

/** What the checker found in one rollout's window. */
export interface RolloutFindings {
  readonly name: string;
  readonly outcome: string;
  /** How long the clusterctl command took, ms. */
  readonly commandMs: number;
  readonly requests: number;
  /** Failed requests other than the deliberately failing version's own errors. */
  readonly failed: number;
  readonly failedSamples: readonly string[];
  /** Server errors answered by the deliberately failing version (v4). */
  readonly expectedErrors: number;
  readonly mismatched: number;
  readonly mismatchSamples: readonly string[];
  readonly subscriberGaps: number;
  readonly subscriberOutOfOrder: number;
  /** Per switch in the window: ms from the last prepared report to each replica's first answer with it. */
  readonly switches: readonly { readonly version: number; readonly switchIndex: number | null; readonly perReplicaMs: Readonly<Record<string, number | null>> }[];
}

export interface MixedVersionReport {
  readonly rollouts: readonly RolloutFindings[];
  readonly subscribers: number;
  readonly events: number;
  readonly ackedWrites: number;
}

interface VersionTruth {
  readonly version: number;
  readonly hash: string;
  readonly activatedIndex: number | null;
}

interface HistoryRecord {
  readonly version: number;
  readonly outcome: string | null;
  readonly preparedAt: string | null;
  readonly switchIndex: number | null;
  readonly reason: string | null;
  readonly rollbackTo: number | null;
}

const sleep = (ms: number): Promise<void> => new Promise((resolveSleep) => setTimeout(resolveSleep, ms));

async function request(node: { id: string; base: string }, kind: Answer['kind'], key: string, n: number): Promise<Answer> {
  const url = kind === 'info' ? `${node.base}/${mixedAppName}/Info/` : `${node.base}/${mixedAppName}/Item/${key}`;
  const init: RequestInit =
    kind === 'write' ? { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: key, value: n }) } : { method: 'GET' };
  try {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
    const text = await response.text();
    const version = response.headers.get('x-lockstep-version');
    const index = response.headers.get('x-lockstep-index');
    const base = { node: node.id, kind, status: response.status, version: version === null ? undefined : Number(version), index: index === null ? undefined : Number(index), endedMs: Date.now() };
    if (response.status >= 300) return { ...base, error: text.slice(0, 300) };
    if (kind === 'info') return { ...base, code: (JSON.parse(text) as { code: string }).code };
    if (kind === 'read') return { ...base, doubled: 'doubled' in (JSON.parse(text) as Record<string, unknown>) };
    return base;
  } catch (error) {
    return { node: node.id, kind, status: 0, version: undefined, index: undefined, endedMs: Date.now(), error: String(error) };
  }
}

/** Runs the scenario on a fleet whose nodes are up; returns what the checker found. */
export async function runMixedVersion(fleet: Fleet, options: MixedVersionOptions): Promise<MixedVersionReport> {
  const log = options.log ?? (() => undefined);
  const appDir = writeApp('mixed-version', mixedFiles('v1'));
  const hashes = new Map<string, Code>();
  const remember = async (code: Code): Promise<void> => {
    hashes.set((await readBundle(appDir)).hash, code);
  };
  await remember('v1');
  await fleet.deploy(appDir, options.regions);
  const nodes = fleet.nodes.map((node) => ({ id: node.id, base: node.base }));
  const first = nodes[0];
  if (first === undefined) throw new Error('the fleet has no nodes');
  for (let k = 0; k < keyCount; k++) {
    const answer = await request(first, 'write', `k${k}`, 0);
    if (answer.status >= 300) throw new Error(`populating k${k} failed: ${answer.status} ${answer.error ?? ''}`);
  }
  // Every node applied the population before the subscribers and the load start.
  const populated = Math.max(0, ...((await Promise.all(nodes.map(async (node) => (await request(node, 'read', `k${keyCount - 1}`, 0)).index ?? 0))) as number[]));
  const subscribers: Subscriber[] = [];
  for (const node of nodes) subscribers.push({ node: node.id, stream: await openWebSocket(`${node.base.replace(/^http/, 'ws')}/${mixedAppName}/Item/`) });

  const answers: Answer[] = [];
  let loading = true;
  let counter = 0;
  const workers = nodes.flatMap((node) =>
    Array.from({ length: options.workersPerNode }, async () => {
      while (loading) {
        const roll = Math.random();
        const kind: Answer['kind'] = roll < 0.4 ? 'write' : roll < 0.8 ? 'read' : 'info';
        answers.push(await request(node, kind, `k${Math.floor(Math.random() * keyCount)}`, ++counter));
        if (options.pauseMs > 0) await sleep(options.pauseMs);
      }
    }),
  );
  // A dedicated poller per node: the first answer with a new version, to within a few ms.
  const pollers = nodes.map(async (node) => {
    while (loading) {
      answers.push(await request(node, 'info', '', 0));
      await sleep(options.pollEveryMs);
    }
  });

  const windows: RolloutWindow[] = [];
  const rollout = async (name: string, code: Code | undefined, command: string[], expectedExit: number): Promise<void> => {
    if (code !== undefined) {
      for (const [file, content] of Object.entries(mixedFiles(code))) editAppFile(appDir, file, (before) => (before === content ? `${content}\n` : content));
      await remember(code);
    }
    const window: RolloutWindow = { name, command, expectedExit, startedMs: Date.now(), endedMs: 0, exit: -1, output: '', commandMs: 0 };
    windows.push(window);
    log(`${name}: clusterctl ${command.join(' ')}`);
    const result = await fleet.ctl(command, 180_000);
    window.exit = result.code;
    window.commandMs = Date.now() - window.startedMs;
    window.output = `${result.stdout}${result.stderr}`;
    if (result.code !== expectedExit) throw new Error(`${name}: clusterctl exited ${result.code}, not ${expectedExit}:\n${window.output}`);
    await sleep(options.phaseMs);
    window.endedMs = Date.now();
  };

  try {
    await sleep(options.phaseMs);
    await rollout('v1 -> v2 (schema and resource change)', 'v2', ['deploy', appDir, '--regions', options.regions, '--timeout', '120s'], 0);
    await rollout('rollback to v1', undefined, ['rollback', mixedAppName, '--to', '1', '--timeout', '120s'], 0);
    await rollout('v3 with a failing check (aborted)', 'v3', ['deploy', appDir, '--regions', options.regions, '--timeout', '120s'], 1);
    await rollout('v4 over the error rate (rolled back)', 'v4', ['deploy', appDir, '--regions', options.regions, '--validate-for', '60s', '--max-error-rate', '0.05', '--timeout', '150s'], 1);
  } finally {
    loading = false;
    await Promise.all([...workers, ...pollers]);
  }

  // Every subscriber has seen everything the load acknowledged (or the wait ends and the
  // checker reports what is missing).
  const lastAcked = Math.max(populated, ...answers.filter((answer) => answer.kind === 'write' && answer.status < 300).map((answer) => answer.index ?? 0));
  await pollUntil(
    async () => (subscribers.every((subscriber) => (subscriber.stream.messages.at(-1)?.index ?? 0) >= lastAcked) ? true : undefined),
    20_000,
    'every subscriber to reach the last acknowledged write',
  ).catch(() => undefined);
  for (const subscriber of subscribers) await subscriber.stream.close();

  const status = (await (await fetch(`${first.base}/_status`)).json()) as { apps: { name: string; versions: VersionTruth[] }[] };
  const truth = status.apps.find((app) => app.name === mixedAppName)?.versions ?? [];
  const control = await fleet.ctlJson<{ history: HistoryRecord[] }>(['status', mixedAppName]);
  return check({ answers, subscribers, truth, hashes, history: control.history, windows, populated });
}

interface CheckInput {
  readonly answers: readonly Answer[];
  readonly subscribers: readonly Subscriber[];
  readonly truth: readonly VersionTruth[];
  readonly hashes: ReadonlyMap<string, Code>;
  readonly history: readonly HistoryRecord[];
  readonly windows: readonly RolloutWindow[];
  readonly populated: number;
}

function check(input: CheckInput): MixedVersionReport {
  const activations = input.truth.filter((version) => version.activatedIndex !== null).sort((a, b) => (a.activatedIndex ?? 0) - (b.activatedIndex ?? 0));
  const activeAt = (index: number): VersionTruth | undefined => {
    let found: VersionTruth | undefined;
    for (const version of activations) if ((version.activatedIndex ?? 0) <= index) found = version;
    return found;
  };
  const codeOf = (version: number | undefined): Code | undefined => input.hashes.get(input.truth.find((candidate) => candidate.version === version)?.hash ?? '');

  // Subscribers: every event in order and from the version active at its index; every
  // acknowledged write and every switch delivered.
  const ackedWrites = input.answers.filter((answer) => answer.kind === 'write' && answer.status < 300 && answer.index !== undefined);
  let events = 0;
  const gapsAt: number[] = [];
  const outOfOrderAt: number[] = [];
  const wrongVersionEvents: string[] = [];
  for (const subscriber of input.subscribers) {
    const messages = subscriber.stream.messages;
    events += messages.length;
    const seen = new Set<number>();
    let last = 0;
    for (const message of messages) {
      if (message.index < last) outOfOrderAt.push(message.index);
      last = Math.max(last, message.index);
      seen.add(message.index);
      if (message.type === 'put' && message.version !== activeAt(message.index)?.version) {
        wrongVersionEvents.push(`${subscriber.node}: put at ${message.index} from version ${String(message.version)}, active ${String(activeAt(message.index)?.version)}`);
      }
      if (message.type === 'version' && activations.find((version) => version.activatedIndex === message.index)?.version !== message.value) {
        wrongVersionEvents.push(`${subscriber.node}: version event ${String(message.value)} at ${message.index}`);
      }
    }
    for (const write of ackedWrites) if (!seen.has(write.index ?? 0)) gapsAt.push(write.index ?? 0);
    for (const version of activations) if ((version.activatedIndex ?? 0) > input.populated && !seen.has(version.activatedIndex ?? 0)) gapsAt.push(version.activatedIndex ?? 0);
  }

  const rollouts = input.windows.map((window, position): RolloutFindings => {
    const until = input.windows[position + 1]?.startedMs ?? Number.POSITIVE_INFINITY;
    const from = position === 0 ? 0 : window.startedMs;
    const inWindow = input.answers.filter((answer) => answer.endedMs >= from && answer.endedMs < until);
    const failedSamples: string[] = [];
    const mismatchSamples: string[] = [];
    let failed = 0;
    let expectedErrors = 0;
    let mismatched = 0;
    for (const answer of inWindow) {
      if (answer.status < 200 || answer.status >= 300) {
        if (answer.status === 500 && codeOf(answer.version) === 'v4') expectedErrors += 1;
        else {
          failed += 1;
          if (failedSamples.length < 5) failedSamples.push(`${answer.node} ${answer.kind} ${answer.status} v${String(answer.version)}: ${answer.error ?? ''}`);
        }
        continue;
      }
      const active = answer.index === undefined ? undefined : activeAt(answer.index);
      const code = codeOf(answer.version);
      const wrong =
        active?.version !== answer.version ||
        (answer.kind === 'info' && answer.code !== code) ||
        (answer.kind === 'read' && answer.doubled !== (code === 'v2'));
      if (wrong) {
        mismatched += 1;
        if (mismatchSamples.length < 5) mismatchSamples.push(`${answer.node} ${answer.kind} v${String(answer.version)} (${String(code)}) at index ${String(answer.index)}, active there v${String(active?.version)}; code ${String(answer.code)} doubled ${String(answer.doubled)}`);
      }
    }
    // The switches this window's command made: its rollout, and a rollback the control plane
    // started itself when validation failed.
    const records = input.history.filter((record) => record.preparedAt !== null && Date.parse(record.preparedAt) >= window.startedMs && Date.parse(record.preparedAt) < until);
    const switches = records.map((record) => {
      const preparedMs = Date.parse(record.preparedAt ?? '');
      const appVersion = activations.find((version) => version.activatedIndex === record.switchIndex)?.version;
      const perReplicaMs: Record<string, number | null> = {};
      for (const node of [...new Set(input.answers.map((answer) => answer.node))].sort()) {
        const firstNew = input.answers.filter((answer) => answer.node === node && answer.version === appVersion && answer.status < 300).reduce((earliest, answer) => Math.min(earliest, answer.endedMs), Number.POSITIVE_INFINITY);
        perReplicaMs[node] = Number.isFinite(firstNew) ? firstNew - preparedMs : null;
      }
      return { version: record.version, switchIndex: record.switchIndex, perReplicaMs };
    });
    const gaps = gapsAt.filter((index) => inWindow.some((answer) => answer.index === index)).length;
    return {
      name: window.name,
      outcome: window.exit === 0 ? 'activated' : /rolled back/.test(window.output) ? 'rolled back' : 'aborted',
      commandMs: window.commandMs,
      requests: inWindow.length,
      failed,
      failedSamples,
      expectedErrors,
      mismatched: mismatched + (position === 0 ? wrongVersionEvents.length : 0),
      mismatchSamples: position === 0 ? [...mismatchSamples, ...wrongVersionEvents.slice(0, 5)] : mismatchSamples,
      subscriberGaps: gaps,
      subscriberOutOfOrder: outOfOrderAt.filter((index) => inWindow.some((answer) => answer.index === index)).length,
      switches,
    };
  });
  // Gaps and disorder outside every window's answers still count (in the first row).
  const attributedGaps = rollouts.reduce((sum, row) => sum + row.subscriberGaps, 0);
  const attributedDisorder = rollouts.reduce((sum, row) => sum + row.subscriberOutOfOrder, 0);
  const [head, ...rest] = rollouts;
  const all = head === undefined ? [] : [{ ...head, subscriberGaps: head.subscriberGaps + gapsAt.length - attributedGaps, subscriberOutOfOrder: head.subscriberOutOfOrder + outOfOrderAt.length - attributedDisorder }, ...rest];
  return { rollouts: all, subscribers: input.subscribers.length, events, ackedWrites: ackedWrites.length };
}

/** The report as a Markdown table. */
export function mixedVersionTable(report: MixedVersionReport): string {
  const lines = [
    '| rollout | outcome | clusterctl, s | requests | failed | v4 errors (expected) | mismatched versions | subscriber gaps | out of order | switch latency per replica, ms (from the last prepared report) |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const row of report.rollouts) {
    const switches = row.switches.map((entry) => `v${entry.version}: ${Object.entries(entry.perReplicaMs).map(([node, ms]) => `${node} ${ms === null ? '-' : ms}`).join(', ')}`).join('; ');
    lines.push(`| ${row.name} | ${row.outcome} | ${(row.commandMs / 1000).toFixed(1)} | ${row.requests} | ${row.failed} | ${row.expectedErrors} | ${row.mismatched} | ${row.subscriberGaps} | ${row.subscriberOutOfOrder} | ${switches || 'no switch'} |`);
  }
  return `${lines.join('\n')}\n\n${report.subscribers} WebSocket subscribers received ${report.events} events; ${report.ackedWrites} acknowledged writes.\n`;
}
