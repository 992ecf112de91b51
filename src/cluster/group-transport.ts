// What a Raft group needs from the node that hosts it: the network (messages, forwarded
// proposals and reads, snapshot streams) and the node's view of applied indexes. The node host
// implements it over the gRPC transport; tests can implement it in-process.
import type { LogIndex } from '../model/ids.js';
import type { ConfChange, ConfState, Message, NodeId } from '../raft/index.js';
import { LogUnavailableError } from '../state/proposer.js';

export interface GroupTransport {
  send(groupId: string, messages: readonly Message[]): void;
  readIndex(leaderId: NodeId, groupId: string, timeoutMs: number): Promise<LogIndex>;
  /** Streams a snapshot's data with its 'snap' message to `message.to`. */
  sendSnapshot(groupId: string, message: Message, data: AsyncIterable<Uint8Array>): Promise<void>;
  /** Resolves true once this node applied `index` of the group, false after the timeout. */
  waitForApplied(groupId: string, index: LogIndex, timeoutMs: number): Promise<boolean>;
  /** The group applied a membership change (the node connects to new peers; a change's
   *  context carries the new member's address). */
  membershipChanged(groupId: string, change: ConfChange, confState: ConfState): void;
}

/** The cluster cannot serve the request now (no leader, no quorum, deadline passed): 503. */
export class ClusterUnavailableError extends LogUnavailableError {}
