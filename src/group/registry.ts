// The groups this node hosts, by id: where the transport delivers messages, snapshots and
// forwarded reads, and what the node ticks.
import type { GroupId, LogIndex, NodeId } from '../model/ids.js';
import type { Message, Status } from '../raft/index.js';
import { GroupUnavailableError } from './errors.js';

/** What the node host needs of a group, whatever its state machine. */
export interface HostedGroup {
  readonly groupId: GroupId;
  tick(): void;
  receive(messages: readonly Message[]): void;
  reportUnreachable(peer: NodeId): void;
  receiveSnapshot(message: Message, data: AsyncIterable<Uint8Array>): Promise<void>;
  readIndexHere(deadlineMs: number): Promise<LogIndex>;
  status(): Status;
  isLeader(): boolean;
  stop(): void;
}

export class GroupRegistry {
  private readonly groups = new Map<GroupId, HostedGroup>();

  add(group: HostedGroup): void {
    if (this.groups.has(group.groupId)) throw new Error(`group ${group.groupId} is already hosted here`);
    this.groups.set(group.groupId, group);
  }

  remove(groupId: GroupId): void {
    this.groups.delete(groupId);
  }

  get(groupId: GroupId): HostedGroup | undefined {
    return this.groups.get(groupId);
  }

  /** The group, or an unavailable error naming this node (a peer's request for a group we do not host). */
  require(groupId: GroupId, nodeId: NodeId): HostedGroup {
    const group = this.groups.get(groupId);
    if (group === undefined) throw new GroupUnavailableError(`node ${nodeId} hosts no group ${groupId}`);
    return group;
  }

  all(): IterableIterator<HostedGroup> {
    return this.groups.values();
  }
}
