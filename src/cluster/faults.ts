// Fault injection for the transport: which peers' traffic this node drops. Both directions are
// separate so a partition can be one-way (A hears B, B does not hear A), the case that breaks
// protocols which assume symmetric links.
import type { NodeId } from '../raft/types.js';

export interface PartitionRule {
  /** Traffic to these peers is dropped before it is sent. */
  readonly dropTo: readonly NodeId[];
  /** Traffic from these peers is dropped on arrival. */
  readonly dropFrom: readonly NodeId[];
}

export class FaultInjectionDisabledError extends Error {
  constructor() {
    super('fault injection is disabled: construct the Transport with faultInjection: true');
  }
}

export class PartitionFaults {
  private dropTo: ReadonlySet<NodeId> = new Set();
  private dropFrom: ReadonlySet<NodeId> = new Set();

  set(rule: PartitionRule): void {
    this.dropTo = new Set(rule.dropTo);
    this.dropFrom = new Set(rule.dropFrom);
  }

  dropsTo(peer: NodeId): boolean {
    return this.dropTo.has(peer);
  }

  dropsFrom(peer: NodeId): boolean {
    return this.dropFrom.has(peer);
  }
}
