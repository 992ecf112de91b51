// `lockstep node`: one node process of a cluster. Hosts one Raft group per app over gRPC and
// serves REST/WebSocket/SSE for all of them. A restarted node recovers its groups from its
// data directory; flags given again change nothing that is already on disk.
import { basename, resolve } from 'node:path';
import { readBundle } from '../app/bundle.js';
import { parseConfig } from '../app/config.js';
import { handleAdmin } from '../cluster/admin.js';
import { ControlAgent } from '../cluster/control-agent.js';
import { Forwarder } from '../cluster/forwarder.js';
import { WanSimulation, clientRegionHeader } from '../cluster/wan.js';
import { NodeHost, type ClusterTiming } from '../cluster/node-host.js';
import type { TlsMaterial } from '../cluster/tls.js';
import type { AppHost } from '../app/app-host.js';
import { NodeServer, appGaugeSources } from '../http/server.js';
import { ClusterMetrics, NodeMetrics } from '../observability/metrics.js';
import { createLogger } from '../observability/logger.js';
import { lockDataDir } from '../storage/data-dir-lock.js';
import { RequestGate } from '../security/request-gate.js';

export interface NodeOptions {
  readonly id: string;
  readonly region: string;
  readonly zone?: string;
  readonly dataDir: string;
  readonly host: string;
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly appDir?: string;
  /** id -> host:port of every founding voter's gRPC server (this node included). */
  readonly peers: ReadonlyMap<string, string>;
  readonly learner: boolean;
  /** Base URLs of control-plane members; empty for a statically bootstrapped node. */
  readonly controlUrls: readonly string[];
  readonly faultInjection: boolean;
  readonly timing: ClusterTiming;
  /** Simulated one-way latencies between regions (tests, benchmarks, lockstep up --simulate-wan). */
  readonly wanMatrix?: ReadonlyMap<string, number>;
  /** The cluster's system token (--token-file): heartbeats and calls to other nodes carry it. */
  readonly systemToken?: string;
  /** --tls-dir, loaded and checked: mutual TLS for the gRPC server and every peer link. */
  readonly tls?: TlsMaterial;
}

export async function runNode(options: NodeOptions): Promise<void> {
  const dataLock = lockDataDir(resolve(options.dataDir));
  const logger = createLogger({ node: options.id, region: options.region });
  let nodeRef: NodeHost | undefined;
  const metrics = new NodeMetrics(() => appGaugeSources(nodeRef?.appHosts ?? new Map<string, AppHost>()));
  const clusterMetrics = new ClusterMetrics(metrics.registry, {
    groups: () => nodeRef?.groupGauges() ?? [],
    transport: () => nodeRef?.transport.counters() ?? { bytesSent: 0, bytesReceived: 0, messagesSent: 0, messagesDropped: 0, reconnects: 0 },
  });
  // With a control plane, what to authorize with is its word (open or its credentials); a node
  // bootstrapped without one runs open.
  const gate = new RequestGate(`node:${options.id}`, options.region, options.controlUrls.length === 0 ? 'open' : undefined, (app) => nodeRef?.appHosts.get(app)?.activeRuntime()?.config.roles);
  const wan = options.wanMatrix === undefined ? undefined : new WanSimulation(options.region, options.wanMatrix);
  const node = new NodeHost({
    nodeId: options.id,
    region: options.region,
    ...(options.zone === undefined ? {} : { zone: options.zone }),
    dataDir: resolve(options.dataDir),
    grpcAddress: `${options.host}:${options.grpcPort}`,
    faultInjection: options.faultInjection,
    timing: options.timing,
    logger,
    metrics: clusterMetrics,
    ...(wan === undefined ? {} : { delayToPeerMs: (peer: string) => wan.toPeer(peer) }),
    // A peer whose certificate is not the node it claims to be: an attempt for the audit trail.
    onRefusedPeer: (refusal) =>
      gate.recordRefusal(
        { method: 'GRPC', path: `/${refusal.call}`, authorization: undefined, source: refusal.address },
        refusal.certified === undefined ? 'uncertified' : `node:${refusal.certified}`,
        refusal.reason ?? `claimed to be node ${refusal.claimed}`,
      ),
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    onFatal: (error, context) => {
      // Memory no longer matches the disk (a failed write) or an invariant broke: stop the
      // process; a restart recovers from the data directory.
      logger.fatal({ err: error, context }, 'node stopped');
      process.exit(1);
    },
  });
  nodeRef = node;
  node.addPeers(options.peers);
  await node.start();
  const records = [...node.savedApps()];
  if (options.appDir !== undefined) {
    const appDir = resolve(options.appDir);
    const bundle = await readBundle(appDir);
    const name = parseConfig(bundle.files['config.yaml']).name ?? basename(appDir);
    if (!records.some((record) => record.name === name)) {
      records.push({ name, appDir, initialVoters: options.learner ? [] : [...options.peers.keys()] });
    }
  }
  for (const record of records) {
    let retainEntries = 10_000;
    try {
      retainEntries = parseConfig((await readBundle(record.appDir)).files['config.yaml']).realtime.retainEntries;
    } catch {
      // The app directory may be gone on a restarted node; the group's own state still serves.
    }
    await node.hostApp(record, retainEntries);
  }
  const apps = node.appHosts;
  let knownNodes = 0;
  const authorization = options.systemToken === undefined ? undefined : `Bearer ${options.systemToken}`;
  /** Assigned below, after the agent whose directory updates it acts on. */
  let forwarder: Forwarder | undefined;
  const agent =
    options.controlUrls.length === 0
      ? undefined
      : new ControlAgent({
          node,
          identity: { id: options.id, region: options.region, zone: options.zone, httpUrl: `http://${options.host}:${options.httpPort}`, grpcAddress: `${options.host}:${options.grpcPort}` },
          controlUrls: options.controlUrls,
          logger,
          gate,
          authorization,
          onDirectory: (directory) => {
            wan?.learn(directory);
            // New nodes in the directory: measure how far they are before routing to them.
            if (directory.nodes.length !== knownNodes) forwarder?.probeSoon();
            knownNodes = directory.nodes.length;
          },
        });
  node.onVerdict = () => agent?.soon();
  forwarder = agent === undefined ? undefined : new Forwarder({ id: options.id, region: options.region }, () => agent.directory(), logger, wan, authorization);
  const server = new NodeServer({
    host: options.host,
    port: options.httpPort,
    apps,
    logger,
    nodeId: options.id,
    metrics,
    groupStatus: (app) => node.statusOf(app),
    admin: (req, res, path) => handleAdmin(node, options.faultInjection, req, res, path),
    gate,
    ...(forwarder === undefined ? {} : { forwarding: forwarder }),
    ...(wan === undefined ? {} : { clientRoundTripMs: (req) => wan.clientRoundTrip(req.headers[clientRegionHeader]) }),
    topology: () => ({
      node: { id: options.id, region: options.region, zone: options.zone ?? null, grpc: `${options.host}:${options.grpcPort}` },
      peers: node.peerAddresses(),
      hosts: [...apps.keys()],
      ...(agent?.directory() ?? { apps: [...apps.keys()] }),
      ...(forwarder === undefined ? {} : { roundTripsMs: forwarder.roundTrips() }),
    }),
  });
  const address = await server.listen();
  agent?.start();
  forwarder?.start();
  process.stdout.write(`lockstep: node ${options.id} (${options.region}) serving ${[...apps.keys()].join(', ') || 'no apps'} at http://${address.address}:${address.port}/ grpc ${options.host}:${options.grpcPort}${options.tls === undefined ? '' : ' (mutual TLS)'}\n`);
  if (options.controlUrls.length === 0) process.stdout.write('lockstep: OPEN (no control plane): no authentication, every caller may do everything\n');
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    agent?.stop();
    forwarder?.stop();
    await server.close();
    await node.stop();
    dataLock.release();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

/** `--control host:port[,host:port...]` as base URLs. */
export function parseControlAddresses(text: string): string[] {
  const urls: string[] = [];
  for (const part of text.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const withScheme = /^https?:\/\//.test(part) ? part : `http://${part}`;
    if (!/^https?:\/\/[A-Za-z0-9.-]+:\d{1,5}\/?$/.test(withScheme)) throw new Error(`--control entry '${part}' is not host:port`);
    urls.push(withScheme.replace(/\/$/, ''));
  }
  return urls;
}

export function parsePeers(text: string): Map<string, string> {
  const peers = new Map<string, string>();
  for (const part of text.split(',').filter((p) => p.trim() !== '')) {
    const match = /^([A-Za-z0-9][A-Za-z0-9_-]{0,63})=([A-Za-z0-9.-]+:\d{1,5})$/.exec(part.trim());
    if (match === null) throw new Error(`--peers entry '${part}' is not id=host:port`);
    if (peers.has(match[1] as string)) throw new Error(`--peers names ${match[1]} twice`);
    peers.set(match[1] as string, match[2] as string);
  }
  return peers;
}
