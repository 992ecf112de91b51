// One peer as seen by the sending side: its own gRPC channel, its own raft stream and its own
// bounded queue, so a slow or dead peer costs only its own queue and never delays the others.
//
// Raft messages are fire-and-forget (raft retransmits), so the link drops rather than waits:
// while it reconnects after a failure, and oldest-first when the queue is full; each drop is
// reported as "unreachable" for the message's group so the leader probes again.
//
// Reconnecting: after a bounded, jittered delay (transport-limits.ts says why the bound is safe)
// the link waits for its channel to be READY, asking it to connect, and reopens the stream the
// moment it is: a stream opened on a channel still in backoff would only fail at once and add
// another delay. The next raft message then goes straight out; a leader heartbeats every
// heartbeat interval, and the follower's answer to it resumes the appends.
import { once } from 'node:events';
import { Client, Metadata, connectivityState, type Call, type ClientWritableStream, type MethodDefinition, type ServiceError } from '@grpc/grpc-js';
import type { Logger } from '../observability/logger.js';
import type { NodeId } from '../raft/types.js';
import { crc32 } from './codec-crc32.js';
import type { TransportCounters } from './transport-counters.js';
import { TransportError, transportErrorOf } from './transport-errors.js';
import {
  batchBytesMax,
  peerQueueBytesMax,
  streamBytesInFlightMax,
  peerQueueMessagesMax,
  healthyStreamLifetimeMsMin,
  reconnectDelayMsMax,
  reconnectDelayMsMin,
  reconnectJitterRatio,
  snapshotChunkBytes,
  snapshotTransferTimeoutMs,
} from './transport-limits.js';
import type { PeerChannel } from './tls.js';
import { clientChannelOptions } from './transport-options.js';
import type { GroupMessagesWire, RaftBatchWire, RaftServiceDefinition, SnapshotAckWire, SnapshotChunkWire } from './transport-proto.js';

interface QueuedMessage {
  readonly group: string;
  readonly bytes: Uint8Array;
}

export interface PeerLinkOptions {
  readonly nodeId: NodeId;
  readonly peerId: NodeId;
  readonly address: string;
  /** Plaintext, or mutual TLS that also checks the server is `peerId` (tls.ts). */
  readonly channel: PeerChannel;
  readonly service: RaftServiceDefinition;
  readonly counters: TransportCounters;
  readonly reportUnreachable: (group: string, peer: NodeId) => void;
  readonly logger?: Logger;
  /** Source of jitter; injectable for tests. */
  readonly random?: () => number;
}

/** idle: no stream yet (one opens with the first message); open: a stream carries the
 *  messages; reconnecting: the stream failed, messages are dropped until a new one opens. */
type LinkState = 'idle' | 'open' | 'reconnecting' | 'closed';

export class PeerLink {
  private readonly client: Client;
  private readonly options: PeerLinkOptions;
  private queue: QueuedMessage[] = [];
  private queueHead = 0;
  private queueBytes = 0;
  private state: LinkState = 'idle';
  private stream: ClientWritableStream<RaftBatchWire> | undefined;
  private waitingDrain = false;
  /** Bytes written to the current stream whose write callback has not run yet. */
  private bytesInFlight = 0;
  private flushScheduled = false;
  /** Streams that failed in a row, each within healthyStreamLifetimeMsMin of opening. */
  private reconnectAttempts = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private streamOpenedMs = 0;
  /** Groups written on the current stream: reported unreachable if the stream fails. Bounded
   *  by the number of groups this node hosts. */
  private readonly groupsOnStream = new Set<string>();
  /** ReadIndex/InstallSnapshot calls in flight, cancelled by close(). */
  private readonly calls = new Set<Call>();

  constructor(options: PeerLinkOptions) {
    this.options = options;
    this.client = new Client(options.address, options.channel.credentials, { ...clientChannelOptions, ...options.channel.options });
  }

  get peerId(): NodeId {
    return this.options.peerId;
  }

  queuedMessages(): number {
    return this.queue.length - this.queueHead;
  }

  /** Queues one encoded message; the batch goes out on the next event-loop turn. */
  enqueue(group: string, bytes: Uint8Array): void {
    if (this.state === 'closed') return;
    if (this.state === 'reconnecting') {
      this.drop(group);
      return;
    }
    this.queue.push({ group, bytes });
    this.queueBytes += bytes.byteLength;
    while (this.queuedMessages() > peerQueueMessagesMax || this.queueBytes > peerQueueBytesMax) {
      const oldest = this.shift();
      this.drop(oldest.group);
    }
    this.scheduleFlush();
  }

  /** Ends the stream, cancels calls in flight, closes the channel. */
  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    this.discardQueue(false);
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
    for (const call of this.calls) call.cancel();
    this.calls.clear();
    this.client.close();
  }

  unary<Request, Response>(method: MethodDefinition<Request, Response>, request: Request, timeoutMs: number): Promise<Response> {
    if (this.state === 'closed') return Promise.reject(new TransportError('cancelled', 'transport stopped'));
    return new Promise<Response>((resolve, reject) => {
      const call = this.client.makeUnaryRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        request,
        new Metadata(),
        { deadline: Date.now() + timeoutMs },
        (error: ServiceError | null, response?: Response) => {
          this.calls.delete(call);
          if (error !== null) reject(transportErrorOf(error));
          else if (response === undefined) reject(new TransportError('internal', 'empty response'));
          else resolve(response);
        },
      );
      this.calls.add(call);
    });
  }

  /** Streams a snapshot in CRC-checked chunks; resolves once the peer's handler accepted it. */
  async sendSnapshot(group: string, metadata: Uint8Array, data: AsyncIterable<Uint8Array> | Uint8Array): Promise<void> {
    if (this.state === 'closed') throw new TransportError('cancelled', 'transport stopped');
    const method = this.options.service.InstallSnapshot;
    let settled = false;
    let call: ClientWritableStream<SnapshotChunkWire> | undefined;
    const outcome = new Promise<SnapshotAckWire>((resolve, reject) => {
      call = this.client.makeClientStreamRequest(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        new Metadata(),
        { deadline: Date.now() + snapshotTransferTimeoutMs },
        (error: ServiceError | null, ack?: SnapshotAckWire) => {
          settled = true;
          if (call !== undefined) this.calls.delete(call);
          if (error !== null) reject(transportErrorOf(error));
          else resolve(ack ?? { ok: false, error: 'empty acknowledgement' });
        },
      );
    });
    // Observed below; this keeps an early failure from being reported as unhandled meanwhile.
    outcome.catch(() => undefined);
    const stream = call!;
    this.calls.add(stream);
    stream.on('error', () => undefined); // the outcome carries the error
    let offset = 0;
    let pending: Uint8Array | undefined;
    const write = async (piece: Uint8Array, last: boolean): Promise<void> => {
      const chunk: SnapshotChunkWire = {
        fromNode: offset === 0 ? this.options.nodeId : '',
        group: offset === 0 ? group : '',
        metadata: offset === 0 ? metadata : new Uint8Array(0),
        data: piece,
        crc32: crc32(piece),
        offset,
        last,
      };
      offset += piece.byteLength;
      this.options.counters.bytesSent += piece.byteLength;
      if (!stream.write(chunk)) await Promise.race([once(stream, 'drain'), outcome]);
    };
    try {
      for await (const piece of rechunk(data, snapshotChunkBytes)) {
        if (settled) break;
        if (pending !== undefined) await write(pending, false);
        pending = piece;
      }
      if (!settled) {
        await write(pending ?? new Uint8Array(0), true);
        stream.end();
      }
    } catch (error) {
      stream.cancel();
      throw error;
    }
    const ack = await outcome;
    if (!ack.ok) throw new TransportError('aborted', `peer ${this.peerId} refused the snapshot: ${ack.error}`);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // One batch per peer per event-loop turn: everything the host queued in this turn.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.state === 'closed' || this.state === 'reconnecting' || this.waitingDrain) return;
    if (this.queuedMessages() === 0) return;
    const stream = this.openStream();
    while (this.queuedMessages() > 0 && this.bytesInFlight < streamBytesInFlightMax) {
      const { batch, batchBytes } = this.takeBatch();
      this.bytesInFlight += batchBytes;
      const written = stream.write(batch, () => {
        if (this.stream !== stream) return; // a callback of a stream that failed since
        this.bytesInFlight -= batchBytes;
        this.scheduleFlush();
      });
      if (!written) {
        // The peer (or the kernel) is not taking more: keep the rest queued, bounded, until drain.
        this.waitingDrain = true;
        stream.once('drain', () => {
          this.waitingDrain = false;
          if (this.stream === stream) this.scheduleFlush();
        });
        return;
      }
    }
  }

  private takeBatch(): { batch: RaftBatchWire; batchBytes: number } {
    const groups = new Map<string, GroupMessagesWire>();
    let batchBytes = 0;
    while (this.queuedMessages() > 0) {
      const next = this.queue[this.queueHead]!;
      if (batchBytes > 0 && batchBytes + next.bytes.byteLength > batchBytesMax) break;
      this.shift();
      batchBytes += next.bytes.byteLength;
      let entry = groups.get(next.group);
      if (entry === undefined) {
        entry = { group: next.group, messages: [] };
        groups.set(next.group, entry);
      }
      entry.messages.push(next.bytes);
      this.groupsOnStream.add(next.group);
      this.options.counters.messagesSent++;
    }
    this.options.counters.bytesSent += batchBytes;
    return { batch: { fromNode: this.options.nodeId, groups: [...groups.values()] }, batchBytes };
  }

  private openStream(): ClientWritableStream<RaftBatchWire> {
    if (this.stream !== undefined) return this.stream;
    const method = this.options.service.Raft;
    const stream: ClientWritableStream<RaftBatchWire> = this.client.makeClientStreamRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      new Metadata(),
      {},
      (error: ServiceError | null) => this.onStreamEnded(stream, error),
    );
    stream.on('error', () => undefined); // reported through the callback
    this.stream = stream;
    this.state = 'open';
    this.streamOpenedMs = performance.now();
    return stream;
  }

  private onStreamEnded(stream: ClientWritableStream<RaftBatchWire>, error: ServiceError | null): void {
    if (this.stream !== stream || this.state === 'closed') return;
    this.stream = undefined;
    this.waitingDrain = false;
    this.bytesInFlight = 0;
    this.options.logger?.debug({ peer: this.peerId, error: error?.details }, 'raft stream to peer ended');
    // What was written on the stream may be lost: let raft know for each group concerned.
    for (const group of this.groupsOnStream) this.options.reportUnreachable(group, this.peerId);
    this.groupsOnStream.clear();
    this.discardQueue(true);
    this.state = 'reconnecting';
    if (performance.now() - this.streamOpenedMs >= healthyStreamLifetimeMsMin) this.reconnectAttempts = 0;
    const delayMs = reconnectDelayMs(this.reconnectAttempts++, this.options.random ?? Math.random);
    // Connecting starts now, during the delay; the delay only spaces out stream openings.
    this.client.getChannel().getConnectivityState(true);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.reopenWhenReady();
    }, delayMs);
  }

  /** Reopens the stream as soon as the channel is READY. Each wait for a change of the
   *  channel's state is bounded, and each wake asks the channel to connect again. */
  private reopenWhenReady(): void {
    if (this.state !== 'reconnecting') return;
    const channel = this.client.getChannel();
    const channelState = channel.getConnectivityState(true);
    if (channelState === connectivityState.SHUTDOWN) return;
    if (channelState !== connectivityState.READY) {
      channel.watchConnectivityState(channelState, Date.now() + reconnectDelayMsMax, () => this.reopenWhenReady());
      return;
    }
    this.state = 'idle';
    this.options.counters.reconnects++;
    // Open right away, so the next message finds the stream up and nothing waits for it.
    this.openStream();
  }

  private shift(): QueuedMessage {
    const message = this.queue[this.queueHead]!;
    this.queueHead++;
    this.queueBytes -= message.bytes.byteLength;
    // Compact once the consumed prefix dominates, so shifting stays O(1) amortised.
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    return message;
  }

  private discardQueue(report: boolean): void {
    while (this.queuedMessages() > 0) {
      const message = this.shift();
      if (report) this.drop(message.group);
      else this.options.counters.messagesDropped++;
    }
    this.queue = [];
    this.queueHead = 0;
    this.queueBytes = 0;
  }

  private drop(group: string): void {
    this.options.counters.messagesDropped++;
    this.options.reportUnreachable(group, this.peerId);
  }
}

/** Exponential from reconnectDelayMsMin, capped at reconnectDelayMsMax, ± jitter so that
 *  nodes restarted together do not reconnect in lockstep. */
export function reconnectDelayMs(attempt: number, random: () => number): number {
  const exponentMax = 16; // 2^16 * min is far above the cap; bounds the shift
  const base = Math.min(reconnectDelayMsMax, reconnectDelayMsMin * 2 ** Math.min(attempt, exponentMax));
  const jitter = 1 + reconnectJitterRatio * (2 * random() - 1);
  return Math.max(1, Math.round(base * jitter));
}

/** Cuts the snapshot source into pieces of exactly `size` bytes (the last one shorter). */
async function* rechunk(source: AsyncIterable<Uint8Array> | Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  if (source instanceof Uint8Array) {
    for (let start = 0; start < source.byteLength; start += size) yield source.subarray(start, start + size);
    return;
  }
  let buffer = new Uint8Array(size);
  let filled = 0;
  for await (const piece of source) {
    let consumed = 0;
    while (consumed < piece.byteLength) {
      const take = Math.min(size - filled, piece.byteLength - consumed);
      buffer.set(piece.subarray(consumed, consumed + take), filled);
      filled += take;
      consumed += take;
      if (filled === size) {
        yield buffer;
        buffer = new Uint8Array(size);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield buffer.subarray(0, filled);
}
