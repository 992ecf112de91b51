// The node-to-node transport of the cluster host over gRPC (proto/raft.proto): raft messages of
// every group batched on one stream per peer (a follower's proposals travel there too, as raft
// 'prop' messages), ReadIndex forwarding to a leader, and snapshots streamed in checksummed chunks.
//
// Each peer has its own channel, stream and bounded queue (transport-peer.ts): a slow or dead
// peer fills and drops only its own queue. The receiving side is transport-server.ts. Bounds
// are in transport-limits.ts, gRPC options (sizes, keepalive, reconnect) in transport-options.ts.
//
// Fault injection (tests, chaos runs): with `faultInjection: true`, setPartition() drops traffic
// to some peers on the sending side and from some peers on the receiving side, so partitions can
// be one-way; requests across a partition fail fast with 'unavailable'.
//
// With `tls` (tls.ts) every connection is mutual TLS against the cluster's CA, both ways, and a
// call's claimed sender must be the node its certificate names; without it, plaintext as before.
import { Server, ServerCredentials } from '@grpc/grpc-js';
import { Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from '../observability/logger.js';
import type { Message, NodeId } from '../raft/types.js';
import { encodeMessage } from './codec.js';
import { FaultInjectionDisabledError, PartitionFaults, type PartitionRule } from './faults.js';
import { zeroCounters, type TransportCounters } from './transport-counters.js';
import { TransportError } from './transport-errors.js';
import { raftMessageBytesMax, requestTimeoutMsMax } from './transport-limits.js';
import { serverChannelOptions } from './transport-options.js';
import { PeerLink } from './transport-peer.js';
import { raftGrpcServiceDefinition, raftServiceDefinition, type RaftServiceDefinition } from './transport-proto.js';
import { raftServiceImplementation, type RefusedPeerListener, type TransportHandlers } from './transport-server.js';
import { plaintextChannel, type TlsMaterial } from './tls.js';

export type { TransportHandlers } from './transport-server.js';
export type { TransportCounters } from './transport-counters.js';
export { TransportError, type TransportErrorCode } from './transport-errors.js';
export { FaultInjectionDisabledError, type PartitionRule } from './faults.js';

export interface TransportOptions {
  readonly nodeId: NodeId;
  /** host:port to listen on; port 0 picks a free port (see boundAddress after start()). */
  readonly listenAddress: string;
  /** Peer node id -> host:port. */
  readonly peers: ReadonlyMap<NodeId, string>;
  readonly handlers: TransportHandlers;
  readonly faultInjection?: boolean;
  readonly logger?: Logger;
  /** Simulated one-way latency to a peer (tests and benchmarks only; see wan.ts). */
  readonly delayToPeerMs?: (peer: NodeId) => number;
  /** Mutual TLS with this CA, certificate and key; absent: plaintext. */
  readonly tls?: TlsMaterial;
  /** Told of every call refused because its claimed sender is not its certificate's node. */
  readonly onRefusedPeer?: RefusedPeerListener;
}

/** Handshakes refused per second that are reported; a scan of the port beyond it is not. */
const refusedHandshakesPerSecondMax = 20;

/**
 * A connection refused during the TLS handshake (plaintext, no client certificate, one the CA did
 * not sign) never becomes a call, so nothing above sees it; it is reported from the TLS server's
 * own event. grpc-js keeps its HTTP/2 servers in a private map: if a version stops doing so, the
 * handshake refusals go unreported (said once in the log) and the refusal itself is unchanged.
 */
function watchHandshakes(server: Server, report: RefusedPeerListener, logger: Logger | undefined): void {
  const servers = (server as unknown as { http2Servers?: Map<unknown, unknown> }).http2Servers;
  const tlsServers = [...(servers?.keys() ?? [])].filter((candidate): candidate is TlsServer => candidate instanceof TlsServer);
  if (tlsServers.length === 0) {
    logger?.warn('cannot watch TLS handshakes of this grpc-js version: refused handshakes are not reported');
    return;
  }
  let windowStartMs = 0;
  let inWindow = 0;
  for (const tlsServer of tlsServers) {
    tlsServer.on('tlsClientError', (error: Error, socket: TLSSocket) => {
      const now = Date.now();
      if (now - windowStartMs >= 1_000) {
        windowStartMs = now;
        inWindow = 0;
      }
      if (++inWindow > refusedHandshakesPerSecondMax) return;
      report({ certified: undefined, claimed: 'unknown', call: 'TLS handshake', address: `${socket.remoteAddress ?? 'unknown'}:${socket.remotePort ?? 0}`, reason: error.message.slice(0, 200) });
    });
  }
}

export class Transport {
  /** Called (on a later event-loop turn, once per group and peer per turn) when messages for
   *  `peer` were or may have been lost; the host calls RawNode.reportUnreachable(peer). */
  onUnreachable?: (group: string, peer: string) => void;

  private readonly options: TransportOptions;
  private readonly service: RaftServiceDefinition;
  private readonly links = new Map<NodeId, PeerLink>();
  private readonly faults: PartitionFaults | undefined;
  private readonly stats: TransportCounters = zeroCounters();
  private server: Server | undefined;
  private bound: string | undefined;
  private stopped = false;
  /** Unreachable reports of this turn, delivered together: peer -> groups. */
  private unreachable = new Map<NodeId, Set<string>>();
  private unreachableTimer: NodeJS.Immediate | undefined;

  constructor(options: TransportOptions) {
    this.options = options;
    this.service = raftServiceDefinition();
    this.faults = options.faultInjection === true ? new PartitionFaults() : undefined;
    for (const [peer, address] of options.peers) this.addPeer(peer, address);
  }

  /** The address the server listens on, with the real port (after start()). */
  get boundAddress(): string {
    if (this.bound === undefined) throw new Error('transport not started');
    return this.bound;
  }

  async start(): Promise<void> {
    if (this.server !== undefined) throw new Error('transport already started');
    const server = new Server(serverChannelOptions);
    server.addService(
      raftGrpcServiceDefinition(),
      raftServiceImplementation({ handlers: this.options.handlers, counters: this.stats, faults: this.faults, logger: this.options.logger, checksSender: this.options.tls !== undefined, ...(this.options.onRefusedPeer === undefined ? {} : { onRefusedPeer: this.options.onRefusedPeer }) }),
    );
    const serverCredentials = this.options.tls?.serverCredentials() ?? ServerCredentials.createInsecure();
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(this.options.listenAddress, serverCredentials, (error, boundPort) => {
        if (error !== null) reject(error);
        else resolve(boundPort);
      });
    });
    this.server = server;
    if (this.options.tls !== undefined && this.options.onRefusedPeer !== undefined) watchHandshakes(server, this.options.onRefusedPeer, this.options.logger);
    const host = this.options.listenAddress.slice(0, this.options.listenAddress.lastIndexOf(':'));
    this.bound = `${host}:${port}`;
  }

  /** Closes every peer link (cancelling calls in flight) and the server (cancelling the calls
   *  it is serving). Leaves no handle open. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const link of this.links.values()) link.close();
    this.links.clear();
    if (this.unreachableTimer !== undefined) clearImmediate(this.unreachableTimer);
    this.unreachable.clear();
    // Peers keep their streams to us open forever, so a graceful shutdown would never finish.
    this.server?.forceShutdown();
  }

  addPeer(nodeId: NodeId, address: string): void {
    if (this.stopped) return;
    if (nodeId === this.options.nodeId) throw new Error(`a node is not its own peer: ${nodeId}`);
    this.links.get(nodeId)?.close();
    this.links.set(
      nodeId,
      new PeerLink({
        nodeId: this.options.nodeId,
        peerId: nodeId,
        address,
        channel: this.options.tls?.channel(nodeId, address) ?? plaintextChannel(),
        service: this.service,
        counters: this.stats,
        reportUnreachable: (group, peer) => this.reportUnreachable(group, peer),
        logger: this.options.logger,
      }),
    );
  }

  removePeer(nodeId: NodeId): void {
    this.links.get(nodeId)?.close();
    this.links.delete(nodeId);
  }

  /**
   * Queues messages to their `to` peers; each peer gets one batch per event-loop turn. Never
   * blocks and never throws for a peer's state: messages for an unknown, down or overloaded
   * peer are dropped and reported through onUnreachable (raft retransmits).
   */
  send(group: string, messages: readonly Message[]): void {
    if (this.stopped) return;
    for (const message of messages) {
      const peer = message.to;
      const link = this.links.get(peer);
      if (link === undefined) {
        this.stats.messagesDropped++;
        this.reportUnreachable(group, peer);
        continue;
      }
      if (this.faults?.dropsTo(peer)) {
        this.stats.messagesDropped++;
        continue;
      }
      const bytes = encodeMessage(message);
      if (bytes.byteLength > raftMessageBytesMax) {
        this.stats.messagesDropped++;
        this.options.logger?.error({ peer, group, bytes: bytes.byteLength, type: message.type }, 'raft message over the size bound dropped');
        this.reportUnreachable(group, peer);
        continue;
      }
      const delayMs = this.options.delayToPeerMs?.(peer) ?? 0;
      if (delayMs > 0) {
        // Same delay per peer, so a peer's messages still arrive in the order they were sent.
        setTimeout(() => this.links.get(peer)?.enqueue(group, bytes), delayMs);
      } else {
        link.enqueue(group, bytes);
      }
    }
  }

  /** Asks `peer` (the group's leader) for a read index. Rejects with a TransportError. */
  readIndex(peer: string, group: string, timeoutMs: number): Promise<number> {
    const link = this.requestLink(peer, timeoutMs);
    if (link instanceof TransportError) return Promise.reject(link);
    const delayMs = this.options.delayToPeerMs?.(peer) ?? 0;
    const ask = (): Promise<number> => link.unary(this.service.ReadIndex, { fromNode: this.options.nodeId, group }, timeoutMs).then((response) => response.index);
    if (delayMs <= 0) return ask();
    const wait = (): Promise<void> => new Promise((resolveWait) => setTimeout(resolveWait, delayMs));
    return wait()
      .then(ask)
      .then(async (index) => {
        await wait();
        return index;
      });
  }

  /** Streams a snapshot to `peer`. A failure leaves nothing to resume: the caller retries the
   *  whole transfer (and reports the outcome to raft with reportSnapshot). */
  sendSnapshot(peer: string, group: string, metadata: Uint8Array, data: AsyncIterable<Uint8Array> | Uint8Array): Promise<void> {
    const link = this.requestLink(peer, 1);
    if (link instanceof TransportError) return Promise.reject(link);
    return link.sendSnapshot(group, metadata, data);
  }

  setPartition(rule: PartitionRule): void {
    if (this.faults === undefined) throw new FaultInjectionDisabledError();
    this.faults.set(rule);
  }

  counters(): TransportCounters {
    return { ...this.stats };
  }

  private requestLink(peer: NodeId, timeoutMs: number): PeerLink | TransportError {
    if (this.stopped) return new TransportError('cancelled', 'transport stopped');
    if (!(timeoutMs > 0 && timeoutMs <= requestTimeoutMsMax)) {
      return new TransportError('invalidArgument', `timeout ${timeoutMs} ms outside (0, ${requestTimeoutMsMax}]`);
    }
    if (this.faults?.dropsTo(peer)) return new TransportError('unavailable', `partitioned from ${peer} (fault injection)`);
    return this.links.get(peer) ?? new TransportError('unavailable', `unknown peer ${peer}`);
  }

  private reportUnreachable(group: string, peer: NodeId): void {
    let groups = this.unreachable.get(peer);
    if (groups === undefined) {
      groups = new Set();
      this.unreachable.set(peer, groups);
    }
    groups.add(group);
    // Deferred: the host may be inside its Ready loop when send() drops a message.
    this.unreachableTimer ??= setImmediate(() => {
      this.unreachableTimer = undefined;
      const reports = this.unreachable;
      this.unreachable = new Map();
      for (const [reportedPeer, reportedGroups] of reports) {
        for (const reportedGroup of reportedGroups) this.onUnreachable?.(reportedGroup, reportedPeer);
      }
    });
  }
}
