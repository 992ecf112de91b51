// Two ways a follower lost the file of the snapshot it had installed from the leader, both
// found by the simulator on the production host ('snapshot file kept'). As a leader it then
// could not send that snapshot to a follower that needed it.
// - Seed 45 (and 31 more of seeds 1..60): the policy counted its next snapshot from its own
//   older one, took one at the installed index at once, found nothing to compact and discarded
//   the file at that index - the installed snapshot's.
// - Seed 10096 (and 10104, 10944, 10977, 11153): the snapshot was installed while the policy's
//   own compaction write was in flight; once that write was durable, retainOnly() deleted every
//   other file, the installed one with them.
import { describe, expect, it } from 'vitest';
import { SnapshotPolicy } from '../../src/group/snapshot-policy.js';
import type { GroupStorage, ReplicatedStateMachine, SnapshotStore } from '../../src/group/types.js';
import type { RaftGroupMetrics } from '../../src/observability/metrics.js';
import { confStateOf, type LogIndex, type SnapshotMetadata } from '../../src/raft/index.js';
import { pino } from 'pino';

const metrics: RaftGroupMetrics = { leaderChanged: () => undefined, proposed: () => undefined, readyPersisted: () => undefined, committed: () => undefined, snapshot: () => undefined };

describe('SnapshotPolicy', () => {
  it('counts a snapshot installed from the leader as the last one, and keeps its file', async () => {
    let snapshot: SnapshotMetadata = { index: 1, term: 1, confState: confStateOf(['a', 'b', 'c']) };
    let applied: LogIndex = 1;
    const files = new Set<LogIndex>();
    const calls: string[] = [];
    const storage = {
      snapshot: () => ({ metadata: snapshot, data: new Uint8Array() }),
      firstIndex: () => snapshot.index + 1,
      initialState: () => ({ hardState: { term: 2, vote: '', commit: applied }, confState: snapshot.confState }),
    } as unknown as GroupStorage;
    const machine = { appliedIndex: () => applied } as unknown as ReplicatedStateMachine<unknown, unknown>;
    const snapshots = {
      create: () => {
        calls.push(`create ${applied}`);
        files.add(applied);
        return Promise.resolve({ index: applied, confState: snapshot.confState });
      },
      discard: (index: LogIndex) => {
        calls.push(`discard ${index}`);
        files.delete(index);
      },
    } as unknown as SnapshotStore;
    const policy = new SnapshotPolicy({
      groupId: 'g',
      storage,
      machine,
      snapshots,
      everyEntries: 10,
      compactMarginEntries: 5,
      logger: pino({ level: 'silent' }),
      metrics,
      onFatal: (error) => calls.push(`fatal ${String(error)}`),
    });
    // The follower installs the leader's snapshot at 50 (its file arrives with it) and applies
    // nothing after it yet: nothing to snapshot.
    snapshot = { index: 50, term: 3, confState: snapshot.confState };
    applied = 50;
    files.add(50);
    policy.maybeSnapshot();
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual([]);
    expect(files.has(50)).toBe(true);
  });

  it('keeps a snapshot installed while its own compaction was being written', async () => {
    const confState = confStateOf(['a', 'b', 'c']);
    let snapshot: SnapshotMetadata = { index: 1, term: 1, confState };
    let first: LogIndex = 2;
    const applied: LogIndex = 30;
    const files = new Set<LogIndex>([1]);
    const calls: string[] = [];
    let finishWrite: () => void = () => undefined;
    const storage = {
      snapshot: () => ({ metadata: snapshot, data: new Uint8Array() }),
      firstIndex: () => first,
      term: () => 2,
      compact: (index: LogIndex, metadata: SnapshotMetadata) => {
        calls.push(`compact ${index}`);
        first = index + 1;
        snapshot = metadata;
      },
      write: () => new Promise<void>((resolve) => (finishWrite = resolve)),
    } as unknown as GroupStorage;
    const machine = { appliedIndex: () => applied } as unknown as ReplicatedStateMachine<unknown, unknown>;
    const snapshots = {
      create: () => {
        files.add(applied);
        return Promise.resolve({ index: applied, confState });
      },
      retainOnly: (index: LogIndex) => {
        calls.push(`retainOnly ${index}`);
        for (const file of [...files]) if (file !== index) files.delete(file);
      },
    } as unknown as SnapshotStore;
    const policy = new SnapshotPolicy({
      groupId: 'g',
      storage,
      machine,
      snapshots,
      everyEntries: 10,
      compactMarginEntries: 5,
      logger: pino({ level: 'silent' }),
      metrics,
      onFatal: (error) => calls.push(`fatal ${String(error)}`),
    });
    policy.maybeSnapshot();
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual(['compact 25']);
    // While the compaction is being written, the leader's snapshot at 80 is installed.
    snapshot = { index: 80, term: 4, confState };
    first = 81;
    files.add(80);
    finishWrite();
    await new Promise((resolve) => setImmediate(resolve));
    expect(files.has(80)).toBe(true);
    expect(calls).toEqual(['compact 25']);
  });
});
