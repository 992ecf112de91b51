// Linearizable reads without log writes (Raft §6.4, ReadIndex): the leader records its commit
// index for a request, confirms it is still leader with a heartbeat round carrying the request's
// context, and then the read may be served once the state machine applied that index.
import type { LogIndex, Message, NodeId } from './types.js';
import { assert, bytesKey } from './util.js';

/** Bound on reads waiting for their heartbeat round; beyond it new requests are dropped and
 *  the host's read times out instead of the leader's memory growing without limit. */
export const READ_INDEX_PENDING_COUNT_MAX = 4096;

export interface ReadIndexStatus {
  readonly request: Message;
  readonly index: LogIndex;
  readonly acks: Set<NodeId>;
}

export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  /** Context keys in request order: an ack for one request confirms every earlier one. */
  private queue: string[] = [];

  /** Returns false if the request was not queued (duplicate context or queue full). */
  addRequest(index: LogIndex, request: Message): boolean {
    assert(request.context !== undefined && request.context.byteLength > 0, 'ReadIndex needs a non-empty context');
    const key = bytesKey(request.context);
    if (this.pending.has(key)) return false; // contexts must be unique; a duplicate is ignored
    if (this.pending.size >= READ_INDEX_PENDING_COUNT_MAX) return false;
    this.pending.set(key, { request, index, acks: new Set() });
    this.queue.push(key);
    return true;
  }

  /** Records that `from` answered the heartbeat round of `context`; returns the acks so far. */
  recvAck(from: NodeId, context: Uint8Array): ReadonlySet<NodeId> | undefined {
    const status = this.pending.get(bytesKey(context));
    if (status === undefined) return undefined;
    status.acks.add(from);
    return status.acks;
  }

  /** Releases the request with `context` and every request queued before it. */
  advance(context: Uint8Array): ReadIndexStatus[] {
    const key = bytesKey(context);
    const position = this.queue.indexOf(key);
    if (position < 0) return [];
    const released = this.queue.slice(0, position + 1);
    this.queue = this.queue.slice(position + 1);
    return released.map((releasedKey) => {
      const status = this.pending.get(releasedKey);
      assert(status !== undefined, 'queued read has no pending status');
      this.pending.delete(releasedKey);
      return status;
    });
  }

  /** The newest pending context, piggybacked on periodic heartbeats to retry lost rounds. */
  lastPendingContext(): Uint8Array | undefined {
    const key = this.queue[this.queue.length - 1];
    return key === undefined ? undefined : this.pending.get(key)!.request.context;
  }

  pendingCount(): number {
    return this.queue.length;
  }
}
