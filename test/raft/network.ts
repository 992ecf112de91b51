// A small in-process network for the raft tests: nodes in a map, Readies handled the way a host
// would (persist, send, apply, advance), messages delivered synchronously in FIFO order.
import { RawNode } from '../../src/raft/raw-node.js';
import { MemoryStorage, confStateOf } from '../../src/raft/memory-storage.js';
import { defaultRaftConfig } from '../../src/raft/config.js';
import { decodeConfChange } from '../../src/raft/codec.js';
import type { ConfState, Entry, Message, NodeId, RaftConfig, Ready } from '../../src/raft/types.js';
import { seededRandom } from '../support/seeded-random.js';

/** Deterministic PRNG so every test run elects the same way. */
export { seededRandom };


export interface NetworkOptions {
  readonly learners?: readonly NodeId[];
  readonly configure?: (config: RaftConfig) => RaftConfig;
  readonly seed?: number;
}

/** Bound on delivery rounds in deliverAll(): a livelock in a test fails instead of hanging. */
const DELIVERY_ROUNDS_MAX = 10_000;

export class Network {
  readonly nodes = new Map<NodeId, RawNode>();
  readonly storages = new Map<NodeId, MemoryStorage>();
  /** Entries each node applied, in order. */
  readonly applied = new Map<NodeId, Entry[]>();
  readonly confStates = new Map<NodeId, ConfState>();
  /** Every Ready each node produced, for tests that inspect the host contract. */
  readonly readies = new Map<NodeId, Ready[]>();
  /** Messages to drop: return true to drop. */
  dropIf: (message: Message) => boolean = () => false;
  private readonly queue: Message[] = [];
  private readonly isolated = new Set<NodeId>();
  private readonly options: NetworkOptions;

  constructor(voters: readonly NodeId[], options: NetworkOptions = {}) {
    this.options = options;
    const confState = confStateOf(voters, options.learners ?? []);
    for (const id of [...voters, ...(options.learners ?? [])]) {
      const storage = new MemoryStorage();
      storage.bootstrap(confState);
      this.addNode(id, storage);
    }
  }

  /** Adds a node with the given storage (empty storage for a joining node). */
  addNode(id: NodeId, storage: MemoryStorage = new MemoryStorage(), applied = 0): RawNode {
    const seed = (this.options.seed ?? 1) * 7919 + [...id].reduce((sum, ch) => sum * 31 + ch.charCodeAt(0), 0);
    let config: RaftConfig = { ...defaultRaftConfig(id, storage, seededRandom(seed)), applied };
    if (this.options.configure) config = this.options.configure(config);
    const node = new RawNode(config);
    this.nodes.set(id, node);
    this.storages.set(id, storage);
    if (!this.applied.has(id)) this.applied.set(id, []);
    this.readies.set(id, []);
    return node;
  }

  /**
   * Replaces a node by one restarted from its storage. The test state machine is in memory, so
   * it restarts from the snapshot and replays the log after it — conf changes included, which
   * is what rebuilds a membership newer than the snapshot's ConfState.
   */
  restart(id: NodeId): RawNode {
    const storage = this.storages.get(id)!;
    const snapshotIndex = storage.snapshot().metadata.index;
    const applied = this.applied.get(id)!;
    const kept = applied.filter((entry) => entry.index <= snapshotIndex);
    applied.length = 0;
    applied.push(...kept);
    return this.addNode(id, storage, snapshotIndex);
  }

  node(id: NodeId): RawNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  isolate(id: NodeId): void {
    this.isolated.add(id);
  }

  heal(): void {
    this.isolated.clear();
  }

  /** Runs one Ready cycle of `id` like a host would. Returns whether there was a Ready. */
  processReady(id: NodeId): boolean {
    const node = this.node(id);
    if (!node.hasReady()) return false;
    const storage = this.storages.get(id)!;
    const ready = node.ready();
    this.readies.get(id)!.push(ready);
    if (ready.snapshot !== undefined) storage.applySnapshot(ready.snapshot);
    storage.append(ready.entries);
    if (ready.hardState !== undefined) storage.setHardState(ready.hardState);
    for (const message of ready.messages) this.queue.push(message);
    const applied = this.applied.get(id)!;
    if (ready.snapshot !== undefined) {
      applied.length = 0; // the snapshot replaces the state machine
      this.confStates.set(id, ready.snapshot.metadata.confState);
    }
    for (const entry of ready.committedEntries) {
      applied.push(entry);
      if (entry.type === 'confChange') this.confStates.set(id, node.applyConfChange(decodeConfChange(entry.data)));
    }
    node.advance(ready);
    return true;
  }

  /** Sends pending messages and processes Readies until the network is quiet. */
  deliverAll(): void {
    for (let round = 0; round < DELIVERY_ROUNDS_MAX; round++) {
      let progressed = false;
      for (const id of this.nodes.keys()) if (this.processReady(id)) progressed = true;
      const batch = this.queue.splice(0);
      for (const message of batch) {
        progressed = true;
        this.deliver(message);
      }
      if (!progressed) return;
    }
    throw new Error(`network did not quiesce within ${DELIVERY_ROUNDS_MAX} rounds`);
  }

  private deliver(message: Message): void {
    if (this.isolated.has(message.from) || this.isolated.has(message.to)) return;
    if (this.dropIf(message)) return;
    const node = this.nodes.get(message.to);
    if (node === undefined) return;
    node.step(message);
    // A host reports the outcome of a snapshot transfer; in-process it always arrives.
    if (message.type === 'snap') this.nodes.get(message.from)?.reportSnapshot(message.to, true);
  }

  /** Takes the messages queued so far without delivering them. */
  takeMessages(): Message[] {
    for (const id of this.nodes.keys()) this.processReady(id);
    return this.queue.splice(0);
  }

  tickAll(ticks: number): void {
    for (let i = 0; i < ticks; i++) {
      for (const node of this.nodes.values()) node.tick();
      this.deliverAll();
    }
  }

  campaign(id: NodeId): void {
    this.node(id).campaign();
    this.deliverAll();
  }

  leaderIds(): NodeId[] {
    return [...this.nodes.entries()].filter(([, node]) => node.status().softState.role === 'leader').map(([id]) => id);
  }

  propose(id: NodeId, text: string): void {
    this.node(id).propose(new TextEncoder().encode(text));
    this.deliverAll();
  }

  /** Texts of the normal, non-empty entries `id` applied. */
  appliedTexts(id: NodeId): string[] {
    return this.applied
      .get(id)!
      .filter((entry) => entry.type === 'normal' && entry.data.byteLength > 0)
      .map((entry) => new TextDecoder().decode(entry.data));
  }
}
