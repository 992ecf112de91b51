// What authentication and authorization cost a node (issue 10), measured two ways on this machine:
//  1. In process, no network: RequestGate.admit of a REST read against a directory of 1,000
//     identities and 5,000 tokens, for a base bearer token, an attenuated token on first use
//     (signatures verified) and once cached, and an unknown token (the 401 path), beside an open
//     gate that checks nothing.
//  2. On real processes: one node serving session GETs of preloaded records and PUTs at 32
//     connections, an open cluster against a secured one (the admin's bearer token on every
//     request), the runs alternating open, secured, open, secured so that the machine's own
//     drift shows as the spread between runs of the same kind.
// Prints markdown tables.
//
//   npm run build && node dist/bench/auth-overhead.js [--duration 10]
//
// Client, control planes and nodes share this machine's two cores; only the secured/open ratio
// of runs side by side means anything, not the absolute figures.
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { runMain } from './run-main.js';
import { Problem } from '../src/model/problem.js';
import { cachedCountMax, type CredentialSnapshot, type IdentityEntry, type TokenEntry } from '../src/security/credentials.js';
import type { Action, Grant, Scope } from '../src/security/permissions.js';
import { RequestGate, type GateRequest } from '../src/security/request-gate.js';
import { attenuate, issueToken } from '../src/security/tokens.js';
import { writeApp } from '../test/support/app-files.js';
import { pollUntil } from '../test/support/cluster.js';
import { removeDir } from '../test/support/dev-server.js';
import { Fleet, nodesOf } from '../test/support/fleet.js';
import { notesFiles } from '../test/support/notes-app.js';

const { values } = parseArgs({ options: { duration: { type: 'string', default: '10' } } });
/** Seconds per load run; capped so the whole run stays bounded (8 runs of it). */
const durationS = Math.min(Math.max(1, Number(values.duration)), 30);
/** Seconds per in-process case: a mean per call settles long before this. */
const inProcessS = Math.min(durationS, 3);
/** Run before each in-process case is timed, so the JIT has compiled the path. */
const warmUpMs = 500;
/** Calls between two looks at the clock. */
const callsPerBatch = 256;

const identityCount = 1_000;
const tokenCount = 5_000;
const appCount = 50;
const unknownTokenCount = 1_000;
/** Cycled in order through the directory's FIFO cache of cachedCountMax verified tokens, a pool
 *  twice its size misses on every call: each token was evicted cachedCountMax insertions ago. */
const firstUsePoolCount = 2 * cachedCountMax;
/** Well inside the cache, so every call after the first pass hits. */
const cachedPoolCount = cachedCountMax / 4;

const loadConnections = 32;
const loadRounds = 2;
/** Records written before the read runs, so reads are hits. */
const preloadCount = 2_000;
/** Keys the PUT runs write over. */
const writeKeyCount = 10_000;
/** Longest a deployed app may take to answer on its node. */
const appReadyTimeoutMs = 60_000;

const appName = 'notes';
const region = 'eu';
const readAction: Action = { op: 'read', app: appName, table: 'Note' };

// ---- 1. In process ----

interface GateRow {
  readonly name: string;
  readonly calls: number;
  readonly callsPerS: number;
  readonly perCallUs: number;
}

interface Directory {
  readonly snapshot: CredentialSnapshot;
  /** Base tokens, the i-th belonging to identity svc-(i mod identityCount). */
  readonly tokens: readonly string[];
}

/** Identities with one grant each (every one includes the benchmarked app, so every token is
 *  admitted) and five tokens each, a fifth of them with a stored scope. */
function makeDirectory(): Directory {
  const roles = ['developer', 'reader', 'agent'] as const;
  const identities: IdentityEntry[] = [];
  const grants: Grant[] = [];
  for (let i = 0; i < identityCount; i++) {
    identities.push({ id: `svc-${i}`, kind: 'service', disabled: false });
    grants.push({ identity: `svc-${i}`, role: roles[i % roles.length] as string, apps: [`app-${i % appCount}`, appName], regions: i % 2 === 0 ? '*' : [region] });
  }
  const tokens: string[] = [];
  const entries: TokenEntry[] = [];
  for (let i = 0; i < tokenCount; i++) {
    const issued = issueToken();
    const scope: Scope = i % 5 === 0 ? { apps: [appName, `app-${i % appCount}`] } : {};
    tokens.push(issued.token);
    entries.push({ id: issued.id, identity: `svc-${i % identityCount}`, hash: issued.hash, publicKey: issued.publicKey, scope, revoked: false });
  }
  return { snapshot: { revision: 1, identities, tokens: entries, grants, roles: [] }, tokens };
}

/** Admits a read with each of `presented` in turn (undefined: no header), for `inProcessS`
 *  after a warm-up; every call must end as `expected` or the bench stops. */
async function measureGate(name: string, gate: RequestGate, presented: readonly (string | undefined)[], expected: 'admitted' | 'unauthorized'): Promise<GateRow> {
  let next = 0;
  const batch = async (): Promise<void> => {
    for (let call = 0; call < callsPerBatch; call++) {
      const token = presented[next++ % presented.length];
      const request: GateRequest = { method: 'GET', path: `/${appName}/Note/n1`, authorization: token === undefined ? undefined : `Bearer ${token}`, source: '127.0.0.1' };
      let outcome: string;
      try {
        await gate.admit(request, readAction);
        outcome = 'admitted';
      } catch (error) {
        if (!(error instanceof Problem)) throw error;
        outcome = error.kind;
      }
      if (outcome !== expected) throw new Error(`${name}: expected ${expected}, the gate answered ${outcome}`);
    }
  };
  for (const warmUpEnd = performance.now() + warmUpMs; performance.now() < warmUpEnd; ) await batch();
  let calls = 0;
  const started = performance.now();
  const deadline = started + inProcessS * 1000;
  while (performance.now() < deadline) {
    await batch();
    calls += callsPerBatch;
  }
  const elapsedMs = performance.now() - started;
  const row: GateRow = { name, calls, callsPerS: Math.round((calls * 1000) / elapsedMs), perCallUs: (elapsedMs * 1000) / calls };
  process.stderr.write(`${JSON.stringify(row)}\n`);
  return row;
}

/** `token` narrowed `blocks` times, each block allowing the benchmarked read. */
function narrowed(token: string, blocks: number): string {
  const scopes: Scope[] = [{ ops: ['read'], apps: [appName] }, { regions: [region] }, { tables: ['Note'] }, { ops: ['read', 'subscribe'] }];
  let result = token;
  for (let i = 0; i < blocks; i++) result = attenuate(result, scopes[i % scopes.length] as Scope);
  return result;
}

async function inProcess(): Promise<{ readonly rows: GateRow[]; readonly buildMs: number }> {
  const directory = makeDirectory();
  const gate = new RequestGate('node:eu1', region);
  const buildStarted = performance.now();
  gate.update({ mode: 'secured', snapshot: directory.snapshot });
  const buildMs = performance.now() - buildStarted;
  const base = directory.tokens;
  const firstUse1 = Array.from({ length: firstUsePoolCount }, (_unused, i) => narrowed(base[i % base.length] as string, 1));
  const firstUse4 = Array.from({ length: firstUsePoolCount }, (_unused, i) => narrowed(base[i % base.length] as string, 4));
  const cached = firstUse1.slice(0, cachedPoolCount);
  const unknown = Array.from({ length: unknownTokenCount }, () => issueToken().token);
  const rows = [
    await measureGate('open gate (nothing checked)', new RequestGate('node:eu1', region, 'open'), [undefined], 'admitted'),
    await measureGate('base token', gate, base, 'admitted'),
    await measureGate('attenuated (1 block), first use', gate, firstUse1, 'admitted'),
    await measureGate('attenuated (4 blocks), first use', gate, firstUse4, 'admitted'),
    await measureGate('attenuated (1 block), cached', gate, cached, 'admitted'),
    // The refusal queue fills (deniedQueuedMax) during the warm-up and then only counts, as it
    // does under a flood between two heartbeats.
    await measureGate('unknown token (401)', gate, unknown, 'unauthorized'),
  ];
  return { rows, buildMs };
}

// ---- 2. Real processes ----

type Mode = 'open' | 'secured';
type Method = 'GET' | 'PUT';

interface LoadRow {
  readonly method: Method;
  readonly mode: Mode;
  readonly round: number;
  readonly requestsPerS: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly non2xx: number;
  readonly errors: number;
}

interface Target {
  readonly mode: Mode;
  readonly fleet: Fleet;
  readonly base: string;
  readonly auth: Record<string, string>;
}

const noteBody = (i: number): string => JSON.stringify({ text: `note-${i}-abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz` });

async function startTarget(mode: Mode, authDir: string | undefined): Promise<Target> {
  const fleet = await Fleet.start({ nodes: nodesOf(`${region}:1`), ...(authDir === undefined ? {} : { authDir }) });
  const target: Target = { mode, fleet, base: fleet.node(`${region}1`).base, auth: fleet.adminHeaders() };
  if (mode === 'secured' && target.auth.authorization === undefined) throw new Error('the secured fleet has no admin token');
  const appDir = writeApp('auth-overhead', notesFiles('v1'));
  const deployed = await fleet.ctl(['deploy', appDir, '--regions', region, '--replicas', '1', '--timeout', '90s']).finally(() => removeDir(appDir));
  if (deployed.code !== 0) throw new Error(`deploy to the ${mode} fleet failed (exit ${deployed.code}): ${deployed.stderr}\n${fleet.describeOutput()}`);
  await pollUntil(
    async () => {
      const response = await fetch(`${target.base}/${appName}/Note/absent`, { headers: target.auth, signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
      await response?.body?.cancel();
      return response?.status === 404 ? true : undefined;
    },
    appReadyTimeoutMs,
    `${appName} to answer on the ${mode} node`,
  );
  let next = 0;
  await Promise.all(
    Array.from({ length: loadConnections }, async () => {
      while (next < preloadCount) {
        const i = next++;
        const response = await fetch(`${target.base}/${appName}/Note/r${i}`, { method: 'PUT', headers: { ...target.auth, 'content-type': 'application/json' }, body: noteBody(i), signal: AbortSignal.timeout(10_000) });
        await response.body?.cancel();
        if (response.status < 200 || response.status > 299) throw new Error(`preload PUT r${i} on the ${mode} node answered ${response.status}`);
      }
    }),
  );
  return target;
}

function load(target: Target, method: Method, round: number): Promise<LoadRow> {
  const headers = method === 'GET' ? { ...target.auth, 'x-lockstep-consistency': 'session' } : { ...target.auth, 'content-type': 'application/json' };
  return new Promise((resolveRun, reject) => {
    const requests = [
      {
        setupRequest: (request: Record<string, unknown>) => {
          const i = Math.floor(Math.random() * (method === 'GET' ? preloadCount : writeKeyCount));
          return method === 'GET' ? { ...request, method, path: `/${appName}/Note/r${i}`, headers } : { ...request, method, path: `/${appName}/Note/w${i}`, headers, body: noteBody(i) };
        },
      },
    ];
    const instance = autocannon(
      { url: target.base, connections: loadConnections, pipelining: 1, duration: durationS, timeout: 10, requests: requests as unknown as autocannon.Request[] },
      (error, result) => {
        clearTimeout(hardStop);
        if (error) {
          reject(error);
          return;
        }
        const row: LoadRow = {
          method,
          mode: target.mode,
          round,
          requestsPerS: Math.round(result.requests.average),
          p50Ms: result.latency.p50,
          p99Ms: result.latency.p99,
          non2xx: result.non2xx,
          errors: result.errors + result.timeouts,
        };
        process.stderr.write(`${JSON.stringify(row)}\n`);
        resolveRun(row);
      },
    );
    const hardStop = setTimeout(() => instance.stop(), (durationS + 20) * 1000);
  });
}

async function onProcesses(): Promise<LoadRow[]> {
  const authDir = mkdtempSync(join(tmpdir(), 'lockstep-auth-bench-'));
  const targets: Target[] = [];
  try {
    // Both fleets run throughout, so the one idle in a run costs the same whichever is measured.
    targets.push(await startTarget('open', undefined));
    targets.push(await startTarget('secured', authDir));
    const rows: LoadRow[] = [];
    for (const method of ['GET', 'PUT'] as const) {
      for (let round = 1; round <= loadRounds; round++) for (const target of targets) rows.push(await load(target, method, round));
    }
    return rows;
  } finally {
    await Promise.all(targets.map((target) => target.fleet.close()));
    rmSync(authDir, { recursive: true, force: true });
  }
}

// ---- Report ----

const count = (n: number): string => n.toLocaleString('en-US');
const loadAverages = (): string => loadavg().map((value) => value.toFixed(2)).join(' ');

function ratioRows(rows: readonly LoadRow[]): string[] {
  const lines: string[] = [];
  for (const method of ['GET', 'PUT'] as const) {
    const of = (mode: Mode, round?: number): LoadRow[] => rows.filter((row) => row.method === method && row.mode === mode && (round === undefined || row.round === round));
    const sum = (list: readonly LoadRow[], field: 'requestsPerS' | 'p99Ms'): number => list.reduce((total, row) => total + row[field], 0);
    const perRound = Array.from({ length: loadRounds }, (_unused, i) => (sum(of('secured', i + 1), 'requestsPerS') / sum(of('open', i + 1), 'requestsPerS')).toFixed(3));
    const overall = (sum(of('secured'), 'requestsPerS') / sum(of('open'), 'requestsPerS')).toFixed(3);
    const p99 = (sum(of('secured'), 'p99Ms') / sum(of('open'), 'p99Ms')).toFixed(2);
    lines.push(`| ${method === 'GET' ? 'GET (session)' : 'PUT'} | ${perRound.join(' | ')} | ${overall} | ${p99} |`);
  }
  return lines;
}

async function main(): Promise<void> {
  const loadAtStart = loadAverages();
  const { rows: gateRows, buildMs } = await inProcess();
  const loadBetween = loadAverages();
  const loadRows = await onProcesses();
  const loadAtEnd = loadAverages();
  const lines = [
    `Load average (1, 5, 15 min): ${loadAtStart} at the start, ${loadBetween} before the load runs, ${loadAtEnd} at the end.`,
    '',
    `In process: RequestGate.admit of a read, ${count(identityCount)} identities, ${count(tokenCount)} tokens, ${inProcessS} s per case after a ${warmUpMs} ms warm-up; directory built from its snapshot in ${buildMs.toFixed(1)} ms.`,
    '',
    '| case | calls/s | µs per call | calls |',
    '|---|---:|---:|---:|',
    ...gateRows.map((row) => `| ${row.name} | ${count(row.callsPerS)} | ${row.perCallUs.toFixed(2)} | ${count(row.calls)} |`),
    '',
    `Real processes: one control plane and one node per cluster, ${appName} app with 1 replica, ${loadConnections} connections, ${durationS} s per run, in the order listed.`,
    '',
    '| request | run | cluster | req/s | p50 ms | p99 ms | non-2xx | errors |',
    '|---|---:|---|---:|---:|---:|---:|---:|',
    ...loadRows.map((row) => `| ${row.method === 'GET' ? 'GET (session)' : 'PUT'} | ${row.round} | ${row.mode} | ${count(row.requestsPerS)} | ${row.p50Ms} | ${row.p99Ms} | ${row.non2xx} | ${row.errors} |`),
    '',
    `| request | ${Array.from({ length: loadRounds }, (_unused, i) => `secured/open req/s, run ${i + 1}`).join(' | ')} | secured/open req/s, all runs | secured/open p99, all runs |`,
    `|---|${'---:|'.repeat(loadRounds + 2)}`,
    ...ratioRows(loadRows),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

runMain(main);
