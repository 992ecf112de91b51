// The receiving side of the transport: the gRPC service implementation. Raft batches are
// decoded and handed to the host grouped by group, in arrival order; requests go to the
// host's handlers with the caller's deadline. Partition faults (dropFrom) are enforced here.
//
// With mutual TLS the TLS handshake has already refused a peer without a certificate of the
// cluster's CA; here a call is refused (PERMISSION_DENIED) when the sender it claims, the batch's
// or request's `fromNode` and every raft message's `from`, is not the node its certificate names.
// A valid certificate of one node therefore cannot speak for another.
import { status, type sendUnaryData, type ServerReadableStream, type ServerUnaryCall, type StatusObject, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Deadline } from '@grpc/grpc-js';
import type { Logger } from '../observability/logger.js';
import type { Message, NodeId } from '../raft/types.js';
import { crc32 } from './codec-crc32.js';
import { CodecError, decodeMessage, plainBytes } from './codec.js';
import type { PartitionFaults } from './faults.js';
import { certifiedPeerId } from './tls.js';
import type { TransportCounters } from './transport-counters.js';
import { statusOfError, TransportError } from './transport-errors.js';
import { requestTimeoutMsDefault, requestTimeoutMsMax, snapshotBytesMax } from './transport-limits.js';
import type {
  RaftAckWire,
  RaftBatchWire,
  ReadIndexRequestWire,
  ReadIndexResponseWire,
  SnapshotAckWire,
  SnapshotChunkWire,
} from './transport-proto.js';

export interface TransportHandlers {
  /** Raft messages of one group from one peer, in the order that peer sent them. */
  onMessages(group: string, messages: Message[]): void;
  /** A follower asks for a read index. `deadlineMs` is absolute (Date.now() clock), derived
   *  from the caller's timeout. Throw a TransportError to choose the caller's error code. */
  onReadIndex(group: string, deadlineMs: number): Promise<number>;
  /** A snapshot arrives: `data` yields its bytes once, CRC-checked per chunk; it throws if the
   *  stream is corrupt or cut short. Resolve once the snapshot is installed. `fromNode` is the
   *  sender (under mutual TLS, the node its certificate names); the raft message in `metadata`
   *  should say the same. */
  onSnapshot(group: string, metadata: Uint8Array, data: AsyncIterable<Uint8Array>, fromNode: NodeId): Promise<void>;
}

export interface ServerContext {
  readonly handlers: TransportHandlers;
  readonly counters: TransportCounters;
  readonly faults: PartitionFaults | undefined;
  readonly logger: Logger | undefined;
  /** Mutual TLS is on: each call's claimed sender must be the node its certificate names. */
  readonly checksSender: boolean;
  readonly onRefusedPeer?: RefusedPeerListener;
}

/** A call refused for its sender: `certified` is the node its certificate names (undefined: none),
 *  `claimed` the one it said it was, `call` the RPC (Raft, ReadIndex, InstallSnapshot). */
export type RefusedPeerListener = (refusal: { readonly certified: NodeId | undefined; readonly claimed: string; readonly call: string; readonly address: string; readonly reason?: string }) => void;

const partitionedStatus = { code: status.UNAVAILABLE, details: 'partitioned (fault injection)' };

export function raftServiceImplementation(context: ServerContext): UntypedServiceImplementation {
  return {
    Raft: (call: ServerReadableStream<RaftBatchWire, RaftAckWire>, callback: sendUnaryData<RaftAckWire>) => {
      const certified = context.checksSender ? certifiedPeerId(call) : undefined;
      let refused = false;
      call.on('data', (batch: RaftBatchWire) => {
        if (refused) return;
        const refusal = senderRefusal(context, certified, batch.fromNode);
        if (refusal === undefined) return receiveBatch(context, batch, certified);
        context.onRefusedPeer?.({ certified, claimed: batch.fromNode, call: 'Raft', address: call.getPeer() });
        // The first batch that lies about its sender ends the stream: nothing more is read from it.
        refused = true;
        for (const group of batch.groups) context.counters.messagesDropped += group.messages.length;
        context.logger?.warn({ peer: certified, claimed: batch.fromNode }, 'refused a raft stream whose sender is not its certificate\'s');
        callback(refusal);
      });
      call.on('end', () => {
        if (!refused) callback(null, {});
      });
      call.on('error', () => undefined); // the peer went away; its link reconnects
    },
    ReadIndex: (call: ServerUnaryCall<ReadIndexRequestWire, ReadIndexResponseWire>, callback: sendUnaryData<ReadIndexResponseWire>) => {
      const request = call.request;
      const certified = context.checksSender ? certifiedPeerId(call) : undefined;
      const refusal = senderRefusal(context, certified, request.fromNode);
      if (refusal !== undefined) {
        context.onRefusedPeer?.({ certified, claimed: request.fromNode, call: 'ReadIndex', address: call.getPeer() });
        return callback(refusal);
      }
      if (context.faults?.dropsFrom(request.fromNode)) return callback(partitionedStatus);
      context.handlers.onReadIndex(request.group, deadlineMsOf(call.getDeadline())).then(
        (index) => callback(null, { index }),
        (error: unknown) => callback(statusOfError(error)),
      );
    },
    InstallSnapshot: (call: ServerReadableStream<SnapshotChunkWire, SnapshotAckWire>, callback: sendUnaryData<SnapshotAckWire>) => {
      receiveSnapshot(context, call).then(
        (ack) => callback(null, ack),
        (error: unknown) => callback(statusOfError(error)),
      );
    },
  };
}

/** Under mutual TLS, why a call claiming `claimed` as its sender is refused, or undefined. */
function senderRefusal(context: ServerContext, certified: NodeId | undefined, claimed: string): Partial<StatusObject> | undefined {
  if (!context.checksSender || (certified !== undefined && certified === claimed)) return undefined;
  const named = certified === undefined ? 'names no node' : `is for ${certified}`;
  return { code: status.PERMISSION_DENIED, details: `the caller claims to be ${claimed}, but its certificate ${named}` };
}

/** `certified`: under mutual TLS the sender the batch was checked against; a raft message
 *  claiming another `from` is dropped. */
function receiveBatch(context: ServerContext, batch: RaftBatchWire, certified: NodeId | undefined): void {
  if (context.faults?.dropsFrom(batch.fromNode)) {
    for (const group of batch.groups) context.counters.messagesDropped += group.messages.length;
    return;
  }
  for (const group of batch.groups) {
    const messages: Message[] = [];
    for (const bytes of group.messages) {
      context.counters.bytesReceived += bytes.byteLength;
      try {
        const message = decodeMessage(bytes);
        if (certified !== undefined && message.from !== certified) {
          context.counters.messagesDropped++;
          context.logger?.warn({ peer: certified, group: group.group, from: message.from }, 'dropped a raft message whose from is not its sender\'s certificate');
          continue;
        }
        messages.push(message);
      } catch (error) {
        if (!(error instanceof CodecError)) throw error;
        // A malformed message is the sender's bug or a corrupt link: drop it, raft retransmits.
        context.counters.messagesDropped++;
        context.logger?.warn({ peer: batch.fromNode, group: group.group, error: error.message }, 'dropped a malformed raft message');
      }
    }
    if (messages.length > 0) context.handlers.onMessages(group.group, messages);
  }
}

/** The caller's deadline as absolute ms, bounded: none or an absurd one becomes a default. */
function deadlineMsOf(deadline: Deadline): number {
  const now = Date.now();
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  if (!Number.isFinite(ms)) return now + requestTimeoutMsDefault;
  return Math.min(ms, now + requestTimeoutMsMax);
}

class SnapshotStreamError extends Error {}

async function receiveSnapshot(
  context: ServerContext,
  call: ServerReadableStream<SnapshotChunkWire, SnapshotAckWire>,
): Promise<SnapshotAckWire> {
  const chunks: AsyncIterator<SnapshotChunkWire> = call[Symbol.asyncIterator]();
  const first = await chunks.next();
  if (first.done === true) return { ok: false, error: 'empty snapshot stream' };
  const head = first.value;
  const certified = context.checksSender ? certifiedPeerId(call) : undefined;
  const refusal = senderRefusal(context, certified, head.fromNode);
  if (refusal !== undefined) context.onRefusedPeer?.({ certified, claimed: head.fromNode, call: 'InstallSnapshot', address: call.getPeer() });
  if (refusal !== undefined) throw new TransportError('permissionDenied', refusal.details ?? 'sender refused');
  if (context.faults?.dropsFrom(head.fromNode)) throw new TransportError('unavailable', partitionedStatus.details);
  let sawLast = false;
  let expectedOffset = 0;
  const data = async function* (): AsyncGenerator<Uint8Array> {
    let chunk: SnapshotChunkWire = head;
    for (;;) {
      if (sawLast) throw new SnapshotStreamError('chunk after the last one');
      if (chunk.offset !== expectedOffset) throw new SnapshotStreamError(`chunk at offset ${chunk.offset}, expected ${expectedOffset}`);
      if (crc32(chunk.data) !== chunk.crc32) throw new SnapshotStreamError(`CRC mismatch in the chunk at offset ${chunk.offset}`);
      expectedOffset += chunk.data.byteLength;
      if (expectedOffset > snapshotBytesMax) throw new SnapshotStreamError(`snapshot larger than ${snapshotBytesMax} bytes`);
      context.counters.bytesReceived += chunk.data.byteLength;
      sawLast = chunk.last;
      if (chunk.data.byteLength > 0) yield plainBytes(chunk.data);
      const next = await chunks.next();
      if (next.done === true) break;
      chunk = next.value;
    }
    if (!sawLast) throw new SnapshotStreamError(`snapshot stream ended at ${expectedOffset} bytes without its last chunk`);
  };
  try {
    await context.handlers.onSnapshot(head.group, plainBytes(head.metadata), data(), head.fromNode);
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
  if (!sawLast) return { ok: false, error: 'the handler returned before the last chunk' };
  return { ok: true, error: '' };
}
