// A control plane and nodes in several regions, as real processes on 127.0.0.1 (the compiled
// `lockstep control` and `lockstep node --control`), and `clusterctl` run as the operator runs
// it. Every process is killed when the test process exits.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ClusterNode, clusterCliPath, freePorts, pollUntil } from './cluster.js';

export const clusterctlPath = join(dirname(clusterCliPath), 'clusterctl.js');

export interface NodeSpec {
  readonly id: string;
  readonly region: string;
  readonly zone?: string;
}

/** Nodes `eu1`, `eu2`, ... per `region:count` (each in a zone of its own: eu-a, eu-b, ...),
 *  as lockstep up names them. */
export function nodesOf(layout: string): NodeSpec[] {
  const specs: NodeSpec[] = [];
  for (const part of layout.split(',')) {
    const [region, count] = part.split(':') as [string, string | undefined];
    for (let i = 0; i < Number(count ?? 1); i++) specs.push({ id: `${region}${i + 1}`, region, zone: `${region}-${String.fromCharCode(97 + i)}` });
  }
  return specs;
}

export interface FleetOptions {
  readonly nodes: readonly NodeSpec[];
  /** Control-plane members (1 or 3). */
  readonly controlMembers?: number;
  readonly heartbeat?: string;
  readonly suspectAfter?: string;
  readonly downAfter?: string;
  /** Extra flags for every node (e.g. --simulate-wan default). */
  readonly nodeArgs?: readonly string[];
  /** Extra flags for every control-plane member (e.g. --prepare-timeout 5s). */
  readonly controlArgs?: readonly string[];
  /** Secured: the control plane's --auth-dir (every member shares it) and every node's
   *  --token-file is its system.token. Absent: the control plane runs --open. */
  readonly authDir?: string;
  /** Every process gets `--tls-dir` this directory (it must hold their certificates). */
  readonly tlsDir?: string;
}

export interface CtlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export class Fleet {
  readonly control: ClusterNode[] = [];
  readonly nodes: ClusterNode[] = [];
  readonly specs = new Map<string, NodeSpec>();
  private readonly rootDir = mkdtempSync(join(tmpdir(), 'lockstep-fleet-'));

  private constructor(private readonly options: FleetOptions) {}

  static async start(options: FleetOptions): Promise<Fleet> {
    const fleet = new Fleet(options);
    try {
      await fleet.startControl(options.controlMembers ?? 1);
      for (const spec of options.nodes) await fleet.addNode(spec);
      await fleet.waitNodesUp(options.nodes.map((node) => node.id));
    } catch (error) {
      const output = fleet.describeOutput();
      await fleet.close();
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${output}`);
    }
    return fleet;
  }

  /** A running control-plane member's URL (any member answers; followers pass to the leader). */
  get controlUrl(): string {
    return (this.control.find((member) => member.isRunning()) ?? (this.control[0] as ClusterNode)).base;
  }

  /** The control-plane member that says it leads, once one does. */
  async controlLeader(timeoutMs = 30_000): Promise<ClusterNode> {
    return pollUntil(
      async () => {
        for (const member of this.control.filter((candidate) => candidate.isRunning())) {
          const health = await fetch(`${member.base}/_health`, { signal: AbortSignal.timeout(2_000), headers: this.adminHeaders() })
            .then(async (response) => (await response.json()) as { isLeader: boolean })
            .catch(() => undefined);
          if (health?.isLeader === true) return member;
        }
        return undefined;
      },
      timeoutMs,
      'a control-plane leader',
    );
  }

  private async startControl(members: number): Promise<void> {
    const ports = await freePorts(members * 2);
    const ids = Array.from({ length: members }, (_unused, i) => `c${i + 1}`);
    const peers = members === 1 ? [] : ['--peers', ids.map((id, i) => `${id}=127.0.0.1:${ports[i * 2 + 1] as number}`).join(',')];
    for (const [i, id] of ids.entries()) {
      const httpPort = ports[i * 2] as number;
      const grpcPort = ports[i * 2 + 1] as number;
      const dataDir = join(this.rootDir, id);
      const args = ['--id', id, '--data', dataDir, '--http', String(httpPort), '--grpc', String(grpcPort), ...peers, ...(this.options.authDir === undefined ? ['--open'] : ['--auth-dir', this.options.authDir]), ...(this.options.tlsDir === undefined ? [] : ['--tls-dir', this.options.tlsDir])];
      args.push('--heartbeat', this.options.heartbeat ?? '300ms', '--suspect-after', this.options.suspectAfter ?? '2s', '--down-after', this.options.downAfter ?? '60s', ...(this.options.controlArgs ?? []));
      this.control.push(new ClusterNode(id, httpPort, grpcPort, dataDir, args, 'control'));
    }
    await Promise.all(this.control.map((member) => member.start()));
  }

  /** Starts one more node that registers with the control plane. */
  async addNode(spec: NodeSpec): Promise<ClusterNode> {
    const [httpPort, grpcPort] = (await freePorts(2)) as [number, number];
    const dataDir = join(this.rootDir, spec.id);
    const controls = this.control.map((member) => `127.0.0.1:${member.httpPort}`).join(',');
    const args = ['--id', spec.id, '--region', spec.region, ...(spec.zone === undefined ? [] : ['--zone', spec.zone]), '--data', dataDir, '--http', String(httpPort), '--grpc', String(grpcPort), '--control', controls, '--fault-injection', ...(this.options.nodeArgs ?? [])];
    if (this.options.authDir !== undefined) args.push('--token-file', join(this.options.authDir, 'system.token'));
    if (this.options.tlsDir !== undefined) args.push('--tls-dir', this.options.tlsDir);
    const node = new ClusterNode(spec.id, httpPort, grpcPort, dataDir, args);
    this.nodes.push(node);
    this.specs.set(spec.id, spec);
    await node.start();
    return node;
  }

  node(id: string): ClusterNode {
    const node = this.nodes.find((candidate) => candidate.id === id);
    if (node === undefined) throw new Error(`no node ${id} in this fleet`);
    return node;
  }

  /** The admin token of a secured fleet (undefined: open). */
  adminToken(): string | undefined {
    return this.options.authDir === undefined ? undefined : readFileSync(join(this.options.authDir, 'admin.token'), 'utf8').trim();
  }

  /** Authorization headers for a request as the admin (none for an open fleet). */
  adminHeaders(): Record<string, string> {
    const token = this.adminToken();
    return token === undefined ? {} : { authorization: `Bearer ${token}` };
  }

  /** Runs clusterctl against this fleet's control plane, as the admin of a secured fleet unless
   *  `token` says otherwise ('' for none). */
  ctl(args: readonly string[], timeoutMs = 120_000, token?: string): Promise<CtlResult> {
    return new Promise((resolveRun, reject) => {
      const members = this.control.filter((member) => member.isRunning()).map((member) => member.base);
      const presented = token ?? this.adminToken();
      const env: NodeJS.ProcessEnv = { ...process.env, LOCKSTEP_CONTROL: (members.length > 0 ? members : [this.controlUrl]).join(',') };
      delete env.LOCKSTEP_TOKEN;
      if (presented !== undefined && presented !== '') env.LOCKSTEP_TOKEN = presented;
      const child = spawn(process.execPath, [clusterctlPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.once('error', reject);
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolveRun({ code: code ?? -1, stdout, stderr });
      });
    });
  }

  /** clusterctl deploy of `appDir` to `regions`; throws with every process's output if it fails. */
  async deploy(appDir: string, regions = 'eu,us'): Promise<void> {
    const result = await this.ctl(['deploy', appDir, '--regions', regions, '--timeout', '90s']);
    if (result.code !== 0) throw new Error(`deploy of ${appDir} failed (exit ${result.code}): ${result.stdout}\n${result.stderr}\n${this.describeOutput()}`);
  }

  async ctlJson<T>(args: readonly string[]): Promise<T> {
    const result = await this.ctl([...args, '-o', 'json']);
    if (result.code !== 0) throw new Error(`clusterctl ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
    return JSON.parse(result.stdout) as T;
  }

  async waitNodesUp(ids: readonly string[], timeoutMs = 30_000): Promise<void> {
    await pollUntil(
      async () => {
        const body = await this.ctlJson<{ nodes: { id: string; state: string }[] }>(['nodes']).catch(() => undefined);
        if (body === undefined) return undefined;
        return ids.every((id) => body.nodes.some((node) => node.id === id && node.state === 'up')) ? true : undefined;
      },
      timeoutMs,
      `nodes ${ids.join(', ')} to be up`,
    );
  }

  describeOutput(): string {
    return [...this.control, ...this.nodes].map((p) => `--- ${p.id} ---\n${p.output().slice(-3000)}`).join('\n');
  }

  async close(): Promise<void> {
    await Promise.all([...this.nodes, ...this.control].map((p) => p.stop()));
    rmSync(this.rootDir, { recursive: true, force: true });
  }
}
