// Real `lockstep node` processes (the compiled CLI) forming a cluster on 127.0.0.1, for fault
// tests, the fault campaign and cluster benchmarks: start, SIGKILL, SIGSTOP/SIGCONT, restart on the
// same ports and data directory, readiness, leader discovery and partitions through /_admin/faults.
// Every process started here is killed when the test process exits, whatever happened.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The compiled CLI; from dist/test/support the root is one level further up. */
export const clusterCliPath = root.endsWith('dist') ? join(root, 'src', 'cli', 'lockstep.js') : join(root, 'dist', 'src', 'cli', 'lockstep.js');
export const shopAppDir = root.endsWith('dist') ? join(root, '..', 'examples', 'shop') : join(root, 'examples', 'shop');
export const appName = 'shop';

/** Longest a node may take to print its serving line. */
const startTimeoutMs = 30_000;
/** Longest a SIGTERM'd node may take to exit before it is SIGKILLed. */
const stopTimeoutMs = 10_000;
/** Each node keeps this much of its latest output for failure reports. */
export const outputKeptBytesMax = 256 * 1024;
/** Deadline of one status/admin request; a paused node must not stall a poll loop. */
const controlRequestTimeoutMs = 2_000;
const pollIntervalMs = 50;

/** Every child of this test process, so none outlives it. */
const liveChildren = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
});

export interface ClusterTimingOptions {
  readonly tickMs?: number;
  readonly electionTicks?: number;
  readonly requestTimeoutMs?: number;
  readonly snapshotEntries?: number;
}

/** One app's entry in GET /_status. */
export interface AppStatus {
  readonly name: string;
  readonly role: string;
  readonly leader: string | null;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly snapshotIndex: number;
  readonly firstLogIndex: number;
  readonly lastLogIndex: number;
  readonly activeVersion: number | null;
  readonly confState: { readonly voters: readonly string[]; readonly learners: readonly string[] };
  readonly progress?: Readonly<Record<string, { readonly match: number; readonly lag: number; readonly learner: boolean }>>;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}

/** Polls until `probe` returns a value other than undefined; throws after `timeoutMs`. */
export async function pollUntil<T>(probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(pollIntervalMs);
  }
}

/** Ports the kernel considered free a moment ago; all held open together so none repeats. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<ReturnType<typeof createServer>>((resolveServer, reject) => {
        const server = createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolveServer(server));
      }),
    ),
  );
  const ports = servers.map((server) => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('listening socket has no port');
    return address.port;
  });
  await Promise.all(servers.map((server) => new Promise<void>((done) => server.close(() => done()))));
  return ports;
}

/** `count` consecutive ports, all free a moment ago (for a command that takes a base port). */
export async function freePortRange(count: number): Promise<number> {
  // Below the kernel's ephemeral range (32768 and up on Linux), where every port another test's
  // process binds with port 0, and every outgoing connection, is taken from: a range picked there
  // could be taken between a test's first start and its restart on the same ports.
  const rangeStartMin = 20_000;
  const rangeStartMax = 32_000 - count;
  for (let attempt = 0; attempt < 20; attempt++) {
    const base = rangeStartMin + Math.floor(Math.random() * (rangeStartMax - rangeStartMin));
    const servers = await Promise.all(
      Array.from({ length: count }, (_unused, i) =>
        new Promise<ReturnType<typeof createServer> | undefined>((resolveServer) => {
          const server = createServer();
          server.once('error', () => resolveServer(undefined));
          server.listen(base + i, '127.0.0.1', () => resolveServer(server));
        }),
      ),
    );
    await Promise.all(servers.map((server) => new Promise<void>((done) => (server === undefined ? done() : server.close(() => done())))));
    if (servers.every((server) => server !== undefined)) return base;
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

export class ClusterNode {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private outputText = '';
  private paused = false;

  constructor(
    readonly id: string,
    readonly httpPort: number,
    readonly grpcPort: number,
    readonly dataDir: string,
    private readonly args: readonly string[],
    /** `lockstep node` or `lockstep control` (a control-plane member). */
    private readonly command: 'node' | 'control' = 'node',
  ) {}

  get base(): string {
    return `http://127.0.0.1:${this.httpPort}`;
  }

  get grpcAddress(): string {
    return `127.0.0.1:${this.grpcPort}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  isRunning(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  isPaused(): boolean {
    return this.paused;
  }

  output(): string {
    return this.outputText;
  }

  /** Starts the process and waits for its serving line (not for the app to be ready). */
  async start(): Promise<void> {
    if (this.isRunning()) throw new Error(`node ${this.id} is already running`);
    const child = spawn(process.execPath, [clusterCliPath, this.command, ...this.args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LOCKSTEP_LOG_LEVEL: process.env.LOCKSTEP_TEST_LOG_LEVEL ?? 'warn' },
    });
    this.child = child;
    this.paused = false;
    liveChildren.add(child);
    let serving: () => void = () => undefined;
    const servingSeen = new Promise<void>((resolveServing) => (serving = resolveServing));
    // Only this start's output counts: a restarted process's serving line is the new one.
    let sinceStart = '';
    const onData = (chunk: Buffer): void => {
      this.outputText += chunk.toString();
      sinceStart += chunk.toString();
      if (sinceStart.length > outputKeptBytesMax) sinceStart = sinceStart.slice(-outputKeptBytesMax / 2);
      if (sinceStart.includes(this.command === 'node' ? `lockstep: node ${this.id} ` : `lockstep: control-plane member ${this.id} `)) serving();
      if (this.outputText.length > outputKeptBytesMax) this.outputText = this.outputText.slice(-outputKeptBytesMax / 2);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.exited = new Promise((resolveExit) =>
      child.once('exit', () => {
        liveChildren.delete(child);
        resolveExit();
      }),
    );
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      servingSeen.then(() => 'serving' as const),
      this.exited.then(() => 'exited' as const),
      new Promise<'timeout'>((resolveTimeout) => (timer = setTimeout(() => resolveTimeout('timeout'), startTimeoutMs))),
    ]);
    clearTimeout(timer);
    if (outcome !== 'serving') {
      child.kill('SIGKILL');
      throw new Error(`${this.command} ${this.id} ${outcome === 'exited' ? 'exited' : `did not serve within ${startTimeoutMs} ms`}; output:\n${this.outputText.slice(-4000)}`);
    }
  }

  /** SIGKILL: no shutdown code runs, like a power cut of the process. */
  async kill(): Promise<void> {
    if (!this.isRunning()) return;
    this.child?.kill('SIGKILL');
    this.paused = false;
    await this.exited;
  }

  /** SIGTERM, then SIGKILL if it does not exit in time. */
  async stop(): Promise<void> {
    if (!this.isRunning()) return;
    if (this.paused) this.resume();
    this.child?.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), stopTimeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  pause(): void {
    if (!this.isRunning()) throw new Error(`node ${this.id} is not running`);
    this.child?.kill('SIGSTOP');
    this.paused = true;
  }

  resume(): void {
    if (!this.isRunning()) throw new Error(`node ${this.id} is not running`);
    this.child?.kill('SIGCONT');
    this.paused = false;
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  /** This node's view of the app, or undefined when it does not answer in time. */
  async status(): Promise<AppStatus | undefined> {
    try {
      const response = await fetch(`${this.base}/_status`, { signal: AbortSignal.timeout(controlRequestTimeoutMs) });
      if (response.status !== 200) {
        await response.body?.cancel();
        return undefined;
      }
      const body = (await response.json()) as { apps?: AppStatus[] };
      return body.apps?.find((app) => app.name === appName);
    } catch {
      return undefined;
    }
  }

  /** POSTs an admin operation; returns the status and body text. */
  async admin(path: string, body: unknown): Promise<{ status: number; text: string }> {
    const response = await fetch(`${this.base}/_admin/${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(controlRequestTimeoutMs),
    });
    return { status: response.status, text: await response.text() };
  }

  async setFaults(dropTo: readonly string[], dropFrom: readonly string[]): Promise<void> {
    const answer = await this.admin('faults', { dropTo, dropFrom });
    if (answer.status !== 200) throw new Error(`node ${this.id} refused fault rule: ${answer.status} ${answer.text}`);
  }
}

export interface ClusterOptions extends ClusterTimingOptions {
  readonly size: number;
  /** Node ids are `${prefix}1..N`. */
  readonly idPrefix?: string;
  /** Every node gets `--tls-dir` this directory (it must hold their certificates). */
  readonly tlsDir?: string;
}

export class Cluster {
  readonly nodes: ClusterNode[] = [];
  private readonly rootDir: string;

  private constructor(private readonly options: ClusterOptions) {
    this.rootDir = mkdtempSync(join(tmpdir(), 'lockstep-cluster-'));
  }

  /** Starts `size` founding voters and waits until every one serves an active app version. */
  static async start(options: ClusterOptions): Promise<Cluster> {
    const cluster = new Cluster(options);
    const prefix = options.idPrefix ?? 'n';
    const ports = await freePorts(options.size * 2);
    const ids = Array.from({ length: options.size }, (_unused, i) => `${prefix}${i + 1}`);
    const peers = ids.map((id, i) => `${id}=127.0.0.1:${ports[i * 2 + 1] as number}`).join(',');
    for (const [i, id] of ids.entries()) {
      cluster.nodes.push(cluster.makeNode(id, ports[i * 2] as number, ports[i * 2 + 1] as number, ['--peers', peers]));
    }
    try {
      await Promise.all(cluster.nodes.map((node) => node.start()));
      await cluster.waitReady();
    } catch (error) {
      const output = cluster.describeOutput();
      await cluster.close();
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${output}`);
    }
    return cluster;
  }

  private makeNode(id: string, httpPort: number, grpcPort: number, extra: readonly string[]): ClusterNode {
    const dataDir = join(this.rootDir, id);
    const timing: string[] = [];
    if (this.options.tickMs !== undefined) timing.push('--tick-ms', String(this.options.tickMs));
    if (this.options.electionTicks !== undefined) timing.push('--election-ticks', String(this.options.electionTicks));
    if (this.options.requestTimeoutMs !== undefined) timing.push('--request-timeout-ms', String(this.options.requestTimeoutMs));
    if (this.options.snapshotEntries !== undefined) timing.push('--snapshot-entries', String(this.options.snapshotEntries));
    const tls = this.options.tlsDir === undefined ? [] : ['--tls-dir', this.options.tlsDir];
    const args = ['--id', id, '--region', 'eu', '--data', dataDir, '--http', String(httpPort), '--grpc', String(grpcPort), '--app', shopAppDir, '--fault-injection', ...timing, ...tls, ...extra];
    return new ClusterNode(id, httpPort, grpcPort, dataDir, args);
  }

  /** Starts a new node that joins as a learner; it is not a member until the leader adds it. */
  async startLearner(id: string): Promise<ClusterNode> {
    const [httpPort, grpcPort] = await freePorts(2);
    const peers = this.nodes.map((node) => `${node.id}=${node.grpcAddress}`).join(',');
    const node = this.makeNode(id, httpPort as number, grpcPort as number, ['--learner', '--peers', peers]);
    this.nodes.push(node);
    await node.start();
    return node;
  }

  node(id: string): ClusterNode {
    const node = this.nodes.find((candidate) => candidate.id === id);
    if (node === undefined) throw new Error(`no node ${id} in this cluster`);
    return node;
  }

  running(): ClusterNode[] {
    return this.nodes.filter((node) => node.isRunning() && !node.isPaused());
  }

  /** Waits until every running, unpaused node (or those given) serves an active app version. */
  async waitReady(nodes: readonly ClusterNode[] = this.running(), timeoutMs = 30_000): Promise<void> {
    await Promise.all(
      nodes.map((node) =>
        pollUntil(
          async () => {
            const status = await node.status();
            return status !== undefined && (status.activeVersion ?? 0) >= 1 ? true : undefined;
          },
          timeoutMs,
          `node ${node.id} to serve an active version`,
        ),
      ),
    );
  }

  /**
   * The leader that the running nodes among `among` agree on: it calls itself leader and every
   * other of them names it at its term. Waits for that; throws after `timeoutMs`.
   */
  async waitForLeader(among: readonly ClusterNode[] = this.running(), timeoutMs = 30_000): Promise<ClusterNode> {
    return pollUntil(
      async () => {
        const statuses = await Promise.all(among.map(async (node) => ({ node, status: await node.status() })));
        const leader = statuses.find(({ status }) => status?.role === 'leader');
        if (leader === undefined || leader.status === undefined) return undefined;
        const agreed = statuses.every(({ status }) => status !== undefined && status.leader === leader.node.id && status.term === leader.status?.term);
        return agreed ? leader.node : undefined;
      },
      timeoutMs,
      `a leader agreed on by ${among.map((node) => node.id).join(', ')}`,
    );
  }

  /** Splits the cluster into `groups`: every node drops traffic to and from nodes of other groups.
   *  Nodes not named in any group are left as they are. */
  async partition(groups: readonly (readonly ClusterNode[])[]): Promise<void> {
    const all = groups.flat();
    await Promise.all(
      all.map((node) => {
        const own = groups.find((group) => group.includes(node)) ?? [];
        const others = all.filter((other) => !own.includes(other)).map((other) => other.id);
        return node.setFaults(others, others);
      }),
    );
  }

  /** `from` can no longer send to `to` (traffic is dropped on both ends' rules, one direction). */
  async dropOneWay(from: ClusterNode, to: ClusterNode): Promise<void> {
    await Promise.all([from.setFaults([to.id], []), to.setFaults([], [from.id])]);
  }

  /** Clears every running node's fault rules (paused nodes are resumed first by the caller). */
  async heal(): Promise<void> {
    await Promise.all(this.nodes.filter((node) => node.isRunning() && !node.isPaused()).map((node) => node.setFaults([], [])));
  }

  async killAll(): Promise<void> {
    await Promise.all(this.nodes.map((node) => node.kill()));
  }

  /** Kills every process and removes the data directories. */
  async close(): Promise<void> {
    await this.killAll();
    rmSync(this.rootDir, { recursive: true, force: true });
  }

  /** The tail of every node's output, for a failure report. */
  describeOutput(bytesPerNode = 3000): string {
    return this.nodes.map((node) => `--- ${node.id} ---\n${node.output().slice(-bytesPerNode)}`).join('\n');
  }
}
