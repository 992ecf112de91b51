// `lockstep control`: one member of the control plane (1 or 3 members). It runs the control
// group on a node host of its own (gRPC for the group's Raft messages) and serves the control
// API over HTTP. A restarted member recovers from its data directory.
import { resolve } from 'node:path';
import { NodeHost, type ClusterTiming } from '../cluster/node-host.js';
import type { TlsMaterial } from '../cluster/tls.js';
import { ControlApi } from '../control/api.js';
import { ControlPlane, controlGroupId } from '../control/control-plane.js';
import type { LivenessTiming } from '../control/liveness.js';
import type { RolloutTiming } from '../control/rollout.js';
import { createLogger } from '../observability/logger.js';
import { ClusterMetrics, NodeMetrics } from '../observability/metrics.js';
import { lockDataDir } from '../storage/data-dir-lock.js';
import type { ControlCredentials } from './auth-files.js';
import type { McpHttpHandler } from './mcp-http.js';

export interface ControlOptions {
  readonly id: string;
  readonly dataDir: string;
  readonly host: string;
  readonly httpPort: number;
  readonly grpcPort: number;
  /** id -> host:port of every founding member's gRPC server (this one included). */
  readonly peers: ReadonlyMap<string, string>;
  readonly timing: ClusterTiming;
  readonly liveness: LivenessTiming;
  readonly rollout: RolloutTiming;
  readonly auditSealEveryMs: number;
  /** --audit-export: where the leader sends each sealed checkpoint. */
  readonly auditExport?: string;
  /** Secured (from --auth-dir); absent: open, development mode. */
  readonly security?: ControlCredentials;
  /** --tls-dir, loaded and checked: mutual TLS for the gRPC server and every peer link. */
  readonly tls?: TlsMaterial;
}

export async function runControl(options: ControlOptions): Promise<void> {
  const dataDir = resolve(options.dataDir);
  const dataLock = lockDataDir(dataDir);
  const logger = createLogger({ control: options.id });
  const metrics = new NodeMetrics(() => []);
  let hostRef: NodeHost | undefined;
  let controlRef: ControlPlane | undefined;
  const clusterMetrics = new ClusterMetrics(metrics.registry, {
    groups: () => hostRef?.groupGauges() ?? [],
    transport: () => hostRef?.transport.counters() ?? { bytesSent: 0, bytesReceived: 0, messagesSent: 0, messagesDropped: 0, reconnects: 0 },
  });
  const onFatal = (error: unknown, context: string): void => {
    logger.fatal({ err: error, context }, 'control-plane member stopped');
    process.exit(1);
  };
  const host = new NodeHost({
    nodeId: options.id,
    region: 'control',
    dataDir,
    grpcAddress: `${options.host}:${options.grpcPort}`,
    faultInjection: false,
    timing: options.timing,
    logger,
    metrics: clusterMetrics,
    onFatal,
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    // A peer refused at the handshake or for its certificate: an attempt for the audit trail.
    onRefusedPeer: (refusal) =>
      controlRef?.recordDenied({
        at: Date.now(),
        surface: 'control',
        actor: refusal.certified === undefined ? 'uncertified' : `node:${refusal.certified}`,
        request: `GRPC /${refusal.call}`,
        reason: refusal.reason ?? `claimed to be node ${refusal.claimed}`,
        source: refusal.address,
      }),
  });
  hostRef = host;
  host.addPeers(options.peers);
  const members = options.peers.size === 0 ? [options.id] : [...options.peers.keys()];
  const control: ControlPlane = new ControlPlane({
    memberId: options.id,
    dataDir,
    httpUrl: `http://${options.host}:${options.httpPort}`,
    initialMembers: members,
    host,
    timing: options.timing,
    liveness: options.liveness,
    rollout: options.rollout,
    auditSealEveryMs: options.auditSealEveryMs,
    ...(options.auditExport === undefined ? {} : { auditExport: options.auditExport }),
    ...(options.security === undefined ? {} : { security: { adminToken: options.security.adminToken, systemToken: options.security.systemToken } }),
    ...(options.security?.adminTokenPath !== undefined
      ? {
          // Said once, by the member that registered it; the secret itself is never printed.
          onBootstrapped: () => process.stdout.write(`lockstep: secured; the first admin token is in ${String(options.security?.adminTokenPath)} (keep it safe: the cluster keeps only its hash)\n`),
        }
      : {}),
    logger,
    metrics: clusterMetrics.forGroup(controlGroupId),
    onFatal,
  });
  controlRef = control;
  await host.start();
  // The MCP SDK is loaded with the first /mcp request: a member that serves none never pays its
  // import (about a third of a second) at start.
  let mcp: Promise<McpHttpHandler> | undefined;
  const serveMcp = async (req: Parameters<McpHttpHandler>[0], res: Parameters<McpHttpHandler>[1], open: boolean): Promise<void> => {
    mcp ??= import('./mcp-http.js').then((module) => module.mcpHttpHandler(`http://${options.host}:${options.httpPort}`));
    await (await mcp)(req, res, open);
  };
  const api = new ControlApi({ control, host: options.host, port: options.httpPort, logger, mcp: serveMcp });
  const address = await api.listen();
  process.stdout.write(`lockstep: control-plane member ${options.id} (of ${members.join(', ')}) at http://${address.address}:${address.port}/ grpc ${options.host}:${options.grpcPort}${options.tls === undefined ? '' : ' (mutual TLS)'}\n`);
  if (options.security === undefined) process.stdout.write('lockstep: OPEN (development mode): no authentication, every caller may do everything; start with --auth-dir to secure the cluster\n');
  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    await api.close();
    await control.close();
    await host.stop();
    dataLock.release();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
