// Three RawNodes, each persisting through an LmdbRaftStorage on real LMDB files, exchanging
// messages in process. One node crashes (its environment closes mid-run), the others go on, and
// the node reopens from disk and catches up: from the log, or from a snapshot after compaction.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { open, type RootDatabase } from 'lmdb';
import { LmdbRaftStorage } from '../../src/storage/raft-storage.js';
import { RawNode, confStateOf, decodeConfChange, defaultRaftConfig } from '../../src/raft/index.js';
import type { Entry, Message, NodeId } from '../../src/raft/types.js';
import { seededRandom } from '../support/seeded-random.js';

/** Bound on delivery rounds: a livelock fails the test instead of hanging it. */
const deliveryRoundsMax = 10_000;
const ticksToElectMax = 200;

interface Member {
  root: RootDatabase;
  storage: LmdbRaftStorage;
  node: RawNode;
  /** Non-empty normal entries applied since this incarnation started (texts). */
  applied: string[];
  appliedIndex: number;
}


class LmdbCluster {
  readonly members = new Map<NodeId, Member>();
  private readonly dirs = new Map<NodeId, string>();
  private readonly queue: Message[] = [];

  constructor(readonly ids: readonly NodeId[]) {
    for (const id of ids) {
      const dir = mkdtempSync(join(tmpdir(), `raft-cluster-${id}-`));
      this.dirs.set(id, dir);
      const member = this.start(id);
      member.storage.bootstrap(confStateOf(ids));
      this.members.set(id, this.restartNode(id, member.root, member.storage));
    }
  }

  private start(id: NodeId): Member {
    const root = open({ path: this.dirs.get(id)!, maxDbs: 16, noSync: false, overlappingSync: false, compression: false, encoding: 'msgpack' });
    const storage = new LmdbRaftStorage(root);
    return this.restartNode(id, root, storage);
  }

  private restartNode(id: NodeId, root: RootDatabase, storage: LmdbRaftStorage): Member {
    // The test's state machine is volatile: it restarts from the snapshot and replays the log.
    const appliedIndex = storage.snapshot().metadata.index;
    const node = new RawNode({ ...defaultRaftConfig(id, storage, seededRandom(id.charCodeAt(1))), applied: appliedIndex, maxSizePerMsgBytes: 1024 });
    return { root, storage, node, applied: [], appliedIndex };
  }

  async crash(id: NodeId): Promise<void> {
    const member = this.members.get(id)!;
    this.members.delete(id);
    await member.root.close();
  }

  reopen(id: NodeId): Member {
    const member = this.start(id);
    this.members.set(id, member);
    return member;
  }

  /** One host Ready cycle: persist in one synced transaction, then send, apply, advance. */
  private processReady(member: Member): boolean {
    if (!member.node.hasReady()) return false;
    const ready = member.node.ready();
    if (ready.snapshot !== undefined) member.storage.applySnapshot(ready.snapshot.metadata);
    member.storage.append(ready.entries);
    if (ready.hardState !== undefined) member.storage.setHardState(ready.hardState);
    member.storage.writeSync();
    this.queue.push(...ready.messages);
    if (ready.snapshot !== undefined) {
      member.applied.length = 0;
      member.appliedIndex = ready.snapshot.metadata.index;
    }
    for (const entry of ready.committedEntries) this.apply(member, entry);
    member.node.advance(ready);
    return true;
  }

  private apply(member: Member, entry: Entry): void {
    expect(entry.index).toBe(member.appliedIndex + 1);
    member.appliedIndex = entry.index;
    if (entry.type === 'confChange') {
      const confState = member.node.applyConfChange(decodeConfChange(entry.data));
      member.storage.setConfState(confState);
      member.storage.writeSync();
    } else if (entry.data.byteLength > 0) {
      member.applied.push(new TextDecoder().decode(entry.data));
    }
  }

  deliverAll(): void {
    for (let round = 0; round < deliveryRoundsMax; round++) {
      let progressed = false;
      for (const member of this.members.values()) if (this.processReady(member)) progressed = true;
      for (const message of this.queue.splice(0)) {
        progressed = true;
        const target = this.members.get(message.to);
        if (target === undefined) continue; // crashed: the message is lost
        target.node.step(message);
        if (message.type === 'snap') this.members.get(message.from)?.node.reportSnapshot(message.to, true);
      }
      if (!progressed) return;
    }
    throw new Error(`cluster did not quiesce within ${deliveryRoundsMax} rounds`);
  }

  tick(count: number): void {
    for (let i = 0; i < count; i++) {
      for (const member of this.members.values()) member.node.tick();
      this.deliverAll();
    }
  }

  leader(): Member {
    for (let i = 0; i < ticksToElectMax; i++) {
      for (const member of this.members.values()) if (member.node.status().softState.role === 'leader') return member;
      this.tick(1);
    }
    throw new Error('no leader elected');
  }

  propose(texts: readonly string[]): void {
    const leader = this.leader();
    for (const text of texts) leader.node.propose(new TextEncoder().encode(text));
    this.deliverAll();
  }

  async close(): Promise<void> {
    for (const member of this.members.values()) await member.root.close();
    this.members.clear();
    for (const dir of this.dirs.values()) rmSync(dir, { recursive: true, force: true });
  }
}

const clusters: LmdbCluster[] = [];
afterEach(async () => {
  for (const cluster of clusters.splice(0)) await cluster.close();
});

const texts = (prefix: string, count: number): string[] => Array.from({ length: count }, (_, i) => `${prefix}-${i}`);

describe('a 3-node raft group on LmdbRaftStorage', () => {
  it('commits proposals, and a crashed node reopens from disk and catches up from the log', async () => {
    const cluster = new LmdbCluster(['n1', 'n2', 'n3']);
    clusters.push(cluster);
    cluster.propose(texts('a', 20));
    for (const member of cluster.members.values()) expect(member.applied).toEqual(texts('a', 20));
    const leaderId = cluster.leader().node.id;
    const victim = ['n1', 'n2', 'n3'].find((id) => id !== leaderId)!;
    const lastBeforeCrash = cluster.members.get(victim)!.storage.lastIndex();
    await cluster.crash(victim);

    cluster.propose(texts('b', 30));
    const reopened = cluster.reopen(victim);
    expect(reopened.storage.lastIndex()).toBe(lastBeforeCrash);
    expect(reopened.storage.initialState().hardState.commit).toBeGreaterThanOrEqual(lastBeforeCrash - 1);
    cluster.tick(30);
    const leader = cluster.leader();
    expect(reopened.storage.lastIndex()).toBe(leader.storage.lastIndex());
    expect(reopened.applied).toEqual([...texts('a', 20), ...texts('b', 30)]);
    for (let index = reopened.storage.firstIndex(); index <= reopened.storage.lastIndex(); index++) {
      expect(reopened.storage.term(index)).toBe(leader.storage.term(index));
    }
  });

  it('a crashed node that fell behind the leader\'s compaction installs its snapshot', async () => {
    const cluster = new LmdbCluster(['n1', 'n2', 'n3']);
    clusters.push(cluster);
    cluster.propose(texts('a', 5));
    const leaderId = cluster.leader().node.id;
    const victim = ['n1', 'n2', 'n3'].find((id) => id !== leaderId)!;
    await cluster.crash(victim);
    cluster.propose(texts('b', 20));
    // Every live member compacts up to its applied index: the crashed one's next entry is gone.
    for (const member of cluster.members.values()) {
      const index = member.appliedIndex;
      const metadata = { index, term: member.storage.term(index), confState: confStateOf(['n1', 'n2', 'n3']) };
      member.storage.compact(index, metadata);
      member.storage.writeSync();
    }
    cluster.propose(texts('c', 3));
    const reopened = cluster.reopen(victim);
    cluster.tick(30);
    const leader = cluster.leader();
    expect(reopened.storage.snapshot().metadata.index).toBe(leader.storage.snapshot().metadata.index);
    expect(reopened.storage.lastIndex()).toBe(leader.storage.lastIndex());
    expect(reopened.applied).toEqual(texts('c', 3));
  });
});
