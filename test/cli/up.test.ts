// `lockstep up` as a user runs it: the compiled CLI as a child process with a temporary data
// directory and a free range of ports. It prints its URLs once the app has converged; the
// cluster it started serves (through the ap node too, which forwards); SIGINT stops every
// process it started and it exits 0; started again on the same data it finds its nodes and
// records, and the deploy changes nothing. Flags it cannot start from exit 2 with nothing
// started, a port in use exits 1 naming the port.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { clusterCliPath, freePortRange, pollUntil } from '../support/cluster.js';
import { keyLines, keyMaterialIn } from '../support/tls.js';

/** The control plane's two ports and two for each of the five nodes. */
const portsUsed = 12;
/** The same for the three nodes of the --tls run. */
const tlsPortsUsed = 8;
/** Longest `lockstep up` may take to print its URLs. */
const upTimeoutMs = 60_000;
const requestTimeoutMs = 5_000;

interface NodeRow {
  readonly id: string;
  readonly region: string;
  readonly zone: string;
  readonly url: string;
  readonly role: string;
  readonly pid: number;
}

interface UpRun {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

function startUp(args: readonly string[]): UpRun {
  const child = spawn(process.execPath, [clusterCliPath, 'up', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  return { child, output: () => output, exited };
}

async function runToEnd(args: readonly string[]): Promise<{ code: number | null; output: string }> {
  const run = startUp(args);
  const code = await run.exited;
  return { code, output: run.output() };
}

/** Waits for the summary; fails with the output if up exits or takes too long. */
async function waitForSummary(run: UpRun): Promise<{ controlUrl: string; controlPid: number; nodes: NodeRow[] }> {
  const outcome = await Promise.race([
    pollUntil(() => (run.output().includes('Ctrl-C stops') ? true : undefined), upTimeoutMs, 'lockstep up to print its URLs').then(() => 'printed' as const),
    run.exited.then((code) => `exited with ${String(code)}` as const),
  ]).catch((error: unknown) => String(error));
  if (outcome !== 'printed') throw new Error(`lockstep up ${outcome}; output:\n${run.output()}`);
  const text = run.output();
  const control = /^control plane {2}(http:\/\/\S+)\/ {2}\(member c1, pid (\d+)\)$/m.exec(text);
  expect(control, text).not.toBeNull();
  const nodes = [...text.matchAll(/^(\w+) +(\w+) +([\w-]+) +(http:\/\/\S+)\/ +up +(voter|learner|-) +(\d+)$/gm)].map((match) => ({
    id: match[1] as string,
    region: match[2] as string,
    zone: match[3] as string,
    url: match[4] as string,
    role: match[5] as string,
    pid: Number(match[6]),
  }));
  return { controlUrl: control?.[1] as string, controlPid: Number(control?.[2]), nodes };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The admin token a secured lockstep up wrote into its data directory. */
let adminHeaders: Record<string, string> = {};

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { headers: adminHeaders, signal: AbortSignal.timeout(requestTimeoutMs) });
  expect(response.status, `GET ${url}`).toBe(200);
  return (await response.json()) as T;
}

interface AppStatusJson {
  readonly converged: boolean;
  readonly voters: string[];
  readonly learners: string[];
  readonly activeVersion: number;
  readonly versions: unknown[];
}

describe('lockstep up', () => {
  const root = mkdtempSync(join(tmpdir(), 'lockstep-up-'));
  const dataDir = join(root, 'data');
  const started: UpRun[] = [];
  const pids = new Set<number>();

  afterAll(async () => {
    // Whatever a failed test left running: up first (it stops its children), then any child.
    for (const run of started) {
      if (run.child.exitCode === null && run.child.signalCode === null) {
        run.child.kill('SIGINT');
        await Promise.race([run.exited, new Promise((resolveWait) => setTimeout(resolveWait, 15_000))]);
        run.child.kill('SIGKILL');
      }
    }
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    rmSync(root, { recursive: true, force: true });
  }, 30_000);

  it('starts a control plane and five nodes, deploys the shop to eu and us, serves through ap, and stops everything on SIGINT; again on the same data', async () => {
    const basePort = await freePortRange(portsUsed);
    const args = ['--data', dataDir, '--base-port', String(basePort)];
    const first = startUp(args);
    started.push(first);
    const summary = await waitForSummary(first);
    for (const pid of [summary.controlPid, ...summary.nodes.map((node) => node.pid)]) pids.add(pid);
    expect(summary.controlUrl).toBe(`http://127.0.0.1:${basePort}`);
    expect(summary.nodes.map((node) => `${node.id}:${node.region}:${node.zone}`)).toEqual(['eu1:eu:eu-a', 'eu2:eu:eu-b', 'us1:us:us-a', 'us2:us:us-b', 'ap1:ap:ap-a']);
    expect(first.output()).toContain(`logs in ${join(dataDir, 'logs')}/<id>.log`);
    // Secured by default: the admin's token is in the data directory, never in the output.
    const adminToken = readFileSync(join(dataDir, 'auth', 'admin.token'), 'utf8').trim();
    expect(first.output()).toContain(`the admin's is in ${join(dataDir, 'auth', 'admin.token')}`);
    expect(first.output()).not.toContain(adminToken);
    expect(first.output()).toContain('export LOCKSTEP_TOKEN=$(cat');
    const refused = await fetch(`${summary.controlUrl}/v1/nodes`, { signal: AbortSignal.timeout(requestTimeoutMs) });
    expect(refused.status, 'no token: refused').toBe(401);
    adminHeaders = { authorization: `Bearer ${adminToken}` };

    const listed = await getJson<{ nodes: { id: string; region: string; state: string; httpUrl: string }[] }>(`${summary.controlUrl}/v1/nodes`);
    expect(listed.nodes.filter((node) => node.state === 'up').map((node) => node.id).sort()).toEqual(['ap1', 'eu1', 'eu2', 'us1', 'us2']);
    const regionOf = new Map(listed.nodes.map((node) => [node.id, node.region]));
    const status = await getJson<AppStatusJson>(`${summary.controlUrl}/v1/apps/shop`);
    expect(status.converged).toBe(true);
    expect(status.voters).toHaveLength(3);
    for (const id of [...status.voters, ...status.learners]) expect(['eu', 'us']).toContain(regionOf.get(id));
    for (const node of summary.nodes) expect(node.role, `${node.id}'s role as printed`).toBe(status.voters.includes(node.id) ? 'voter' : status.learners.includes(node.id) ? 'learner' : '-');

    // Through ap1, which holds no replica: the write and the read are served by a node that does.
    const ap = summary.nodes.find((node) => node.id === 'ap1') as NodeRow;
    const hosts = [...status.voters, ...status.learners];
    const put = await fetch(`${ap.url}/shop/Product/p1`, { method: 'PUT', headers: { 'content-type': 'application/json', ...adminHeaders }, body: JSON.stringify({ name: 'Lamp', price: 20, stock: 5 }), signal: AbortSignal.timeout(requestTimeoutMs) });
    expect(put.status, await put.text()).toBe(204);
    expect(hosts).toContain(put.headers.get('x-lockstep-served-by'));
    const read = await fetch(`${ap.url}/shop/Product/p1`, { headers: { 'x-lockstep-consistency': 'linearizable', ...adminHeaders }, signal: AbortSignal.timeout(requestTimeoutMs) });
    expect(read.status).toBe(200);
    expect(hosts).toContain(read.headers.get('x-lockstep-served-by'));
    expect(read.headers.get('x-lockstep-forwarded-by')).toBe('ap1');
    expect(((await read.json()) as { name: string }).name).toBe('Lamp');

    first.child.kill('SIGINT');
    expect(await first.exited, first.output()).toBe(0);
    for (const pid of pids) expect(alive(pid), `process ${pid} left running`).toBe(false);

    // Again on the same data: the same nodes, the record kept, the deploy a no-op.
    const second = startUp(args);
    started.push(second);
    const again = await waitForSummary(second);
    for (const pid of [again.controlPid, ...again.nodes.map((node) => node.pid)]) pids.add(pid);
    expect(again.nodes.map((node) => node.id)).toEqual(summary.nodes.map((node) => node.id));
    const statusAgain = await getJson<AppStatusJson>(`${again.controlUrl}/v1/apps/shop`);
    expect(statusAgain.activeVersion).toBe(1);
    expect(statusAgain.versions).toHaveLength(1);
    expect([...statusAgain.voters].sort()).toEqual([...status.voters].sort());
    const voter = again.nodes.find((node) => node.id === statusAgain.voters[0]) as NodeRow;
    const kept = await getJson<{ name: string }>(`${voter.url}/shop/Product/p1`);
    expect(kept.name).toBe('Lamp');
    second.child.kill('SIGINT');
    expect(await second.exited, second.output()).toBe(0);
    for (const pid of pids) expect(alive(pid), `process ${pid} left running`).toBe(false);
  }, 150_000);

  it('--tls: makes a CA and certificates in <data>/tls, runs every process with --tls-dir, and the cluster serves', async () => {
    const basePort = await freePortRange(tlsPortsUsed);
    const data = join(root, 'tls');
    const run = startUp(['--data', data, '--base-port', String(basePort), '--regions', 'eu:3', '--deploy-regions', 'eu', '--tls']);
    started.push(run);
    const summary = await waitForSummary(run);
    for (const pid of [summary.controlPid, ...summary.nodes.map((node) => node.pid)]) pids.add(pid);
    expect(run.output()).toContain(`lockstep up: mutual TLS between all processes; certificates in ${join(data, 'tls')}/ (a new development CA)`);
    expect(readdirSync(join(data, 'tls')).sort()).toEqual(['c1', 'ca', 'eu1', 'eu2', 'eu3'].flatMap((id) => [`${id}-key.pem`, `${id}.pem`]).sort());
    for (const id of ['c1', 'eu1', 'eu2', 'eu3']) expect(readFileSync(join(data, 'logs', `${id}.log`), 'utf8'), `${id}'s log`).toContain(' (mutual TLS)');
    const [voter] = summary.nodes.filter((node) => node.role === 'voter');
    const token = readFileSync(join(data, 'auth', 'admin.token'), 'utf8').trim();
    const put = await fetch(`${(voter as NodeRow).url}/shop/Product/p1`, { method: 'PUT', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ name: 'Lamp', price: 20, stock: 5 }), signal: AbortSignal.timeout(requestTimeoutMs) });
    expect(put.status, await put.text()).toBe(204);
    const logs = readdirSync(join(data, 'logs')).map((file) => readFileSync(join(data, 'logs', file), 'utf8')).join('\n');
    expect(keyMaterialIn(`${run.output()}${logs}`, keyLines(join(data, 'tls')))).toBeUndefined();
    run.child.kill('SIGINT');
    expect(await run.exited, run.output()).toBe(0);
    for (const pid of pids) expect(alive(pid), `process ${pid} left running`).toBe(false);
  }, 120_000);

  it('refuses flags it cannot start from with exit 2, starting nothing', async () => {
    const data = join(root, 'bad-flags');
    for (const [args, message] of [
      [['--regions', 'eu:0'], /--regions eu must have 1 to 26 nodes/],
      [['--regions', 'eu:2,us:2', '--deploy-regions', 'eu,ap'], /--deploy-regions names ap, which --regions does not start/],
      [['--deploy-regions', 'ap'], /hold 1 node\(s\); the app's 3 voters need at least 3/],
      [['--base-port', '65530'], /--base-port must be an integer from 1 to/],
      [['--app', join(root, 'no-such-app')], /--app: cannot read the app/],
      [['--colour'], /Unknown option '--colour'/],
    ] as const) {
      const result = await runToEnd(['--data', data, ...args]);
      expect(result.code, `${args.join(' ')}: ${result.output}`).toBe(2);
      expect(result.output, args.join(' ')).toMatch(message);
      expect(existsSync(data), `${args.join(' ')} created ${data}`).toBe(false);
    }
  });

  it('names the port in use, with exit 1, starting nothing', async () => {
    const basePort = await freePortRange(portsUsed);
    const holder = createServer();
    await new Promise<void>((resolveListen) => holder.listen(basePort + 4, '127.0.0.1', () => resolveListen()));
    try {
      const data = join(root, 'port-clash');
      const result = await runToEnd(['--data', data, '--base-port', String(basePort)]);
      expect(result.code, result.output).toBe(1);
      expect(result.output).toContain(`port ${basePort + 4} on 127.0.0.1 (the HTTP port of eu2) is in use`);
      expect(existsSync(data)).toBe(false);
    } finally {
      await new Promise<void>((resolveClose) => holder.close(() => resolveClose()));
    }
  });
});
