// What `lockstep up` starts, from its flags: one control-plane member and the nodes of each
// region, each with the exact arguments of its `lockstep control` / `lockstep node` process,
// and the deploy it makes. Pure (no I/O), so docker-compose.yml and deploy/kubernetes/ are
// checked against the same function that `lockstep up` runs (test/cli/topology-agreement).
import { join } from 'node:path';
import { defaultWanMatrix, parseWanMatrix } from '../cluster/wan.js';

/** The flags' defaults, as `lockstep up` would be given them. */
export const upDefaults = {
  regions: 'eu:2,us:2,ap:1',
  app: 'examples/shop',
  deployRegions: 'eu,us',
  data: '.lockstep-up',
  host: '127.0.0.1',
  basePort: '9900',
} as const;

/** Voters of the deployed app, as clusterctl deploy's default. */
export const deployReplicas = 3;
/** A zone letter per node of a region: eu-a, eu-b, ... */
export const nodesPerRegionMax = 26;
/** More processes than a laptop runs with room to spare. */
export const nodesCountMax = 32;
/** A zone is `<region>-<letter>` and `lockstep node` takes zones of at most 32 characters. */
const regionPattern = /^[a-z0-9][a-z0-9-]{0,29}$/;
const hostPattern = /^[A-Za-z0-9.-]+$/;
const controlMemberId = 'c1';
/** With --tls, `lockstep certs` writes into <data>/tls and every process gets --tls-dir there. */
export const upTlsDirName = 'tls';

export interface RegionSize {
  readonly region: string;
  readonly nodes: number;
}

export interface UpOptions {
  readonly regions: readonly RegionSize[];
  readonly appDir: string;
  readonly deployRegions: readonly string[];
  readonly dataDir: string;
  readonly host: string;
  readonly basePort: number;
  /** --simulate-wan: the one-way latency matrix every node simulates, or undefined. */
  readonly wanMatrix: string | undefined;
  /** --open: no authentication (development only). Otherwise the control plane's --auth-dir is
   *  <data>/auth, and every node reads the system token from there. */
  readonly open: boolean;
  /** --tls: the TLS directory every process is given (<data>/tls), or undefined (plaintext). */
  readonly tlsDir: string | undefined;
}

/** One child process of `lockstep up`. */
export interface UpProcess {
  readonly id: string;
  readonly command: 'control' | 'node';
  /** Nodes only. */
  readonly region?: string;
  readonly zone?: string;
  readonly httpPort: number;
  readonly grpcPort: number;
  /** http://<host>:<httpPort> */
  readonly url: string;
  readonly dataDir: string;
  /** Everything after `lockstep <command>`. */
  readonly args: readonly string[];
}

export interface UpTopology {
  readonly control: UpProcess;
  readonly nodes: readonly UpProcess[];
  readonly deploy: { readonly appDir: string; readonly regions: readonly string[]; readonly replicas: number };
}

/** A flag `lockstep up` cannot start from; nothing has been started. */
export class UpFlagError extends Error {}

export type UpFlags = { readonly [name in keyof typeof upDefaults]?: string | undefined } & {
  /** --simulate-wan given. */
  readonly simulateWan?: boolean;
  /** --wan-matrix (implies --simulate-wan). */
  readonly wanMatrix?: string | undefined;
  /** --open given. */
  readonly open?: boolean;
  /** --tls given. */
  readonly tls?: boolean;
};

/** The flags as options; throws UpFlagError naming the flag that is wrong. */
export function parseUpFlags(flags: UpFlags): UpOptions {
  const value = (name: keyof typeof upDefaults): string => flags[name] ?? upDefaults[name];
  const regions = parseRegions(value('regions'));
  const deployRegions = value('deployRegions').split(',').map((region) => region.trim()).filter((region) => region !== '');
  if (deployRegions.length === 0) throw new UpFlagError('--deploy-regions names no region');
  for (const region of deployRegions) {
    if (!regions.some((size) => size.region === region)) throw new UpFlagError(`--deploy-regions names ${region}, which --regions does not start (${regions.map((size) => size.region).join(', ')})`);
  }
  if (new Set(deployRegions).size !== deployRegions.length) throw new UpFlagError('--deploy-regions names a region twice');
  const deployNodes = regions.filter((size) => deployRegions.includes(size.region)).reduce((sum, size) => sum + size.nodes, 0);
  if (deployNodes < deployReplicas) throw new UpFlagError(`--deploy-regions ${deployRegions.join(',')} hold ${deployNodes} node(s); the app's ${deployReplicas} voters need at least ${deployReplicas}`);
  const host = value('host');
  if (!hostPattern.test(host)) throw new UpFlagError(`--host must be a host name or IPv4 address, not '${host}'`);
  const basePortText = value('basePort');
  const basePort = Number(basePortText);
  const nodeCount = regions.reduce((sum, size) => sum + size.nodes, 0);
  const lastPort = basePort + portsUsed(nodeCount) - 1;
  if (!/^\d+$/.test(basePortText) || basePort < 1 || lastPort > 65535) {
    throw new UpFlagError(`--base-port must be an integer from 1 to ${65536 - portsUsed(nodeCount)} (${portsUsed(nodeCount)} ports from there on are used), not '${basePortText}'`);
  }
  const appDir = value('app');
  const dataDir = value('data');
  if (appDir === '') throw new UpFlagError('--app must name an app directory');
  if (dataDir === '') throw new UpFlagError('--data must name a directory');
  let wanMatrix: string | undefined;
  if (flags.simulateWan === true || flags.wanMatrix !== undefined) {
    wanMatrix = flags.wanMatrix ?? defaultWanMatrix;
    try {
      parseWanMatrix(wanMatrix);
    } catch (error) {
      throw new UpFlagError(`--wan-matrix: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return { regions, appDir, deployRegions, dataDir, host, basePort, wanMatrix, open: flags.open === true, tlsDir: flags.tls === true ? join(dataDir, upTlsDirName) : undefined };
}

/** `eu:2,us:2,ap:1`; a region without a count has one node. */
export function parseRegions(text: string): RegionSize[] {
  const sizes: RegionSize[] = [];
  for (const part of text.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const match = /^([^:]+)(?::(\d+))?$/.exec(part);
    const region = match?.[1] ?? '';
    const nodes = match?.[2] === undefined ? 1 : Number(match[2]);
    if (match === null || !regionPattern.test(region)) throw new UpFlagError(`--regions entry '${part}' must be region:count, the region lower-case letters, digits and '-' (at most 30)`);
    if (!(nodes >= 1 && nodes <= nodesPerRegionMax)) throw new UpFlagError(`--regions ${region} must have 1 to ${nodesPerRegionMax} nodes, not '${match[2] ?? ''}'`);
    if (sizes.some((size) => size.region === region)) throw new UpFlagError(`--regions names ${region} twice`);
    sizes.push({ region, nodes });
  }
  if (sizes.length === 0) throw new UpFlagError('--regions names no region (for example eu:2,us:2,ap:1)');
  const total = sizes.reduce((sum, size) => sum + size.nodes, 0);
  if (total > nodesCountMax) throw new UpFlagError(`--regions asks for ${total} nodes; lockstep up starts at most ${nodesCountMax}`);
  return sizes;
}

/** The control member takes two ports, each node two more. */
function portsUsed(nodeCount: number): number {
  return 2 + 2 * nodeCount;
}

/** Ports: the control plane's HTTP at --base-port and gRPC at the next; then each node's HTTP
 *  and gRPC in turn, in the order of --regions. Ids are the region and a number from 1, zones
 *  the region and a letter (one zone per node, so three voters in one region still survive the
 *  loss of a zone). */
/** Where a secured `lockstep up` keeps its credentials: system.token and admin.token. */
export function authDirOf(options: UpOptions): string {
  return join(options.dataDir, 'auth');
}

export function upTopology(options: UpOptions): UpTopology {
  const { host, basePort } = options;
  const authDir = authDirOf(options);
  const tlsArgs = options.tlsDir === undefined ? [] : ['--tls-dir', options.tlsDir];
  const control: UpProcess = {
    id: controlMemberId,
    command: 'control',
    httpPort: basePort,
    grpcPort: basePort + 1,
    url: `http://${host}:${basePort}`,
    dataDir: join(options.dataDir, controlMemberId),
    args: ['--id', controlMemberId, '--data', join(options.dataDir, controlMemberId), '--host', host, '--http', String(basePort), '--grpc', String(basePort + 1), ...(options.open ? ['--open'] : ['--auth-dir', authDir]), ...tlsArgs],
  };
  const nodes: UpProcess[] = [];
  for (const { region, nodes: count } of options.regions) {
    for (let ordinal = 0; ordinal < count; ordinal++) {
      const id = `${region}${ordinal + 1}`;
      const zone = `${region}-${String.fromCharCode(97 + ordinal)}`;
      const httpPort = basePort + 2 + 2 * nodes.length;
      const dataDir = join(options.dataDir, id);
      nodes.push({
        id,
        command: 'node',
        region,
        zone,
        httpPort,
        grpcPort: httpPort + 1,
        url: `http://${host}:${httpPort}`,
        dataDir,
        args: [
          ...['--id', id, '--region', region, '--zone', zone, '--data', dataDir, '--host', host, '--http', String(httpPort), '--grpc', String(httpPort + 1), '--control', `${host}:${basePort}`],
          ...(options.open ? [] : ['--token-file', join(authDir, 'system.token')]),
          ...(options.wanMatrix === undefined ? [] : ['--simulate-wan', options.wanMatrix]),
          ...tlsArgs,
        ],
      });
    }
  }
  return {
    control,
    nodes,
    deploy: { appDir: options.appDir, regions: options.deployRegions, replicas: deployReplicas },
  };
}
