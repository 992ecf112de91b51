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
  /** The round's token, carried by its heartbeats and echoed by their responses. */
  readonly token: Uint8Array;
}

/**
 * Heartbeat rounds are identified by a token the leader makes for each request (its term and a
 * sequence number), not by the request's own context. A context can come back (the network
 * duplicates a forwarded request after its round completed); if acks were matched on it, late
 * answers to the earlier round would confirm the new one, and every read queued before it,
 * without any heartbeat sent after them. (Found by the simulator, seed 101201.)
 */
export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  /** Request contexts still pending, so a duplicate of a pending request is ignored. */
  private readonly pendingContexts = new Set<string>();
  /** Token keys in request order: an ack for one request confirms every earlier one. */
  private queue: string[] = [];
  private tokenSequence = 0;

  /** Queues a request; returns its round token, or undefined if it was not queued (duplicate
   *  of a pending context, or queue full). */
  addRequest(index: LogIndex, request: Message, term: number): Uint8Array | undefined {
    assert(request.context !== undefined && request.context.byteLength > 0, 'ReadIndex needs a non-empty context');
    const contextKey = bytesKey(request.context);
    if (this.pendingContexts.has(contextKey)) return undefined;
    if (this.pending.size >= READ_INDEX_PENDING_COUNT_MAX) return undefined;
    const token = new Uint8Array(16);
    const view = new DataView(token.buffer);
    view.setFloat64(0, term);
    view.setFloat64(8, ++this.tokenSequence);
    const key = bytesKey(token);
    this.pending.set(key, { request, index, acks: new Set(), token });
    this.pendingContexts.add(contextKey);
    this.queue.push(key);
    return token;
  }

  /** Records that `from` answered the heartbeat round of `token`; returns the acks so far. */
  recvAck(from: NodeId, token: Uint8Array): ReadonlySet<NodeId> | undefined {
    const status = this.pending.get(bytesKey(token));
    if (status === undefined) return undefined;
    status.acks.add(from);
    return status.acks;
  }

  /** Releases the request of `token` and every request queued before it. */
  advance(token: Uint8Array): ReadIndexStatus[] {
    const key = bytesKey(token);
    const position = this.queue.indexOf(key);
    if (position < 0) return [];
    const released = this.queue.slice(0, position + 1);
    this.queue = this.queue.slice(position + 1);
    return released.map((releasedKey) => {
      const status = this.pending.get(releasedKey);
      assert(status !== undefined, 'queued read has no pending status');
      this.pending.delete(releasedKey);
      this.pendingContexts.delete(bytesKey(status.request.context as Uint8Array));
      return status;
    });
  }

  /** The newest pending round's token, piggybacked on periodic heartbeats to retry lost rounds. */
  lastPendingToken(): Uint8Array | undefined {
    const key = this.queue[this.queue.length - 1];
    return key === undefined ? undefined : this.pending.get(key)!.token;
  }

  pendingCount(): number {
    return this.queue.length;
  }
}
