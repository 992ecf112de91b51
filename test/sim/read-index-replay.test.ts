// Finding from the 5000-seed soak (seed 101201, linearizability): a ReadIndex round is confirmed
// by heartbeat responses matched on the request's context alone. When the network duplicates a
// follower's forwarded readIndex message after its round completed, the duplicate opens a new
// round under the same context, and late heartbeat responses of the FIRST round are credited to
// it. Reaching a quorum that way releases every read queued before it - reads that no heartbeat
// sent after them ever confirmed - so a deposed leader serves stale reads.
//
// Reproduced here step by step on three cores with hand-delivered messages. Fixed in the core:
// heartbeats now carry a leader-generated round token (term and sequence), so acks of an earlier
// round never confirm a later one.

import { describe, expect, it } from 'vitest';
import type { Message, NodeId, ReadState } from '../../src/raft/types.js';
import { confStateOf, defaultRaftConfig, MemoryStorage, RawNode } from './core.js';

const voterIds: readonly NodeId[] = ['n1', 'n2', 'n3'];
/** Bound on delivery rounds while electing the first leader: three nodes need a handful. */
const pumpRoundsMax = 50;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

class HandCluster {
  readonly nodes = new Map<NodeId, { readonly core: RawNode; readonly storage: MemoryStorage }>();
  readonly readStates = new Map<NodeId, ReadState[]>();

  constructor() {
    for (const id of voterIds) {
      const storage = new MemoryStorage();
      storage.bootstrap(confStateOf(voterIds));
      const core = new RawNode({ ...defaultRaftConfig(id, storage, () => 0.5), applied: 1 });
      this.nodes.set(id, { core, storage });
      this.readStates.set(id, []);
    }
  }

  core(id: NodeId): RawNode {
    return this.nodes.get(id)!.core;
  }

  /** Persist and advance every node's Ready; return the messages they send. */
  drain(): Message[] {
    const out: Message[] = [];
    for (const [id, { core, storage }] of this.nodes) {
      while (core.hasReady()) {
        const ready = core.ready();
        if (ready.snapshot !== undefined) storage.applySnapshot(ready.snapshot);
        storage.append(ready.entries);
        if (ready.hardState !== undefined) storage.setHardState(ready.hardState);
        out.push(...ready.messages);
        this.readStates.get(id)!.push(...ready.readStates);
        core.advance(ready);
      }
    }
    return out;
  }

  deliver(messages: readonly Message[]): void {
    for (const message of messages) this.core(message.to).step(message);
  }

  /** Deliver everything until the cluster is quiet. */
  settle(): void {
    for (let round = 0; round < pumpRoundsMax; round++) {
      const messages = this.drain();
      if (messages.length === 0) return;
      this.deliver(messages);
    }
    throw new Error(`still talking after ${pumpRoundsMax} rounds`);
  }
}

function contextOf(message: Message): string {
  return message.context === undefined ? '' : textDecoder.decode(message.context);
}

describe('ReadIndex under duplicated messages', () => {
  it('a replayed readIndex request does not let stale heartbeat acks confirm reads queued before it', () => {
    const cluster = new HandCluster();
    cluster.core('n1').campaign();
    cluster.settle();
    expect(cluster.core('n1').status().softState.role).toBe('leader');

    // n2 forwards read A to the leader; keep a copy, as a duplicating network would.
    cluster.core('n2').readIndex(textEncoder.encode('A'));
    const [forwardedA] = cluster.drain().filter((message) => message.type === 'readIndex');
    expect(forwardedA).toBeDefined();
    cluster.deliver([forwardedA!]);
    // The round's heartbeats carry a context (the leader's round token; before the fix, 'A' itself).
    const heartbeatsA = cluster.drain().filter((message) => message.type === 'heartbeat' && contextOf(message) !== '');
    cluster.deliver(heartbeatsA);
    const responsesA = cluster.drain().filter((message) => message.type === 'heartbeatResp');
    const fromN2 = responsesA.find((message) => message.from === 'n2')!;
    const lateFromN3 = responsesA.find((message) => message.from === 'n3')!;
    expect(lateFromN3).toBeDefined();
    cluster.deliver([fromN2]); // quorum {n1, n2}: A is answered; n3's answer is still on its way
    cluster.drain();

    // The leader is now cut off: a local read B starts a round whose heartbeats are lost.
    cluster.core('n1').readIndex(textEncoder.encode('B'));
    cluster.drain();
    // The duplicate of A arrives, then n3's late answer to the first round of A.
    cluster.deliver([forwardedA!]);
    cluster.drain();
    cluster.deliver([lateFromN3]);
    cluster.drain();

    // No node answered any heartbeat sent after B was requested: B must still be pending.
    const released = cluster.readStates.get('n1')!.map((state) => textDecoder.decode(state.requestContext));
    expect(released).not.toContain('B');
  });
});
