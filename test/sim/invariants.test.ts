import { describe, expect, it } from 'vitest';
import { NONE, type Entry, type HardState, type Message, type Ready } from '../../src/raft/types.js';
import { MemoryStorage } from './core.js';
import { InvariantChecker, SafetyViolation } from './invariants.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const entry = (index: number, term: number, data = `e${index}t${term}`): Entry => ({ index, term, type: 'normal', data: bytes(data) });

function ready(entries: Entry[], hardState?: HardState): Ready {
  return { readStates: [], entries, committedEntries: [], messages: [], mustSync: true, ...(hardState ? { hardState } : {}) };
}

/** Persist a Ready into `storage` and report it, as the host's storage does; `leaderTerm`: the
 *  node was elected leader of that term first. */
function persist(checker: InvariantChecker, nodeId: string, storage: MemoryStorage, r: Ready, leaderTerm?: number): void {
  if (leaderTerm !== undefined) checker.onLeader(nodeId, leaderTerm);
  storage.append(r.entries);
  if (r.hardState) storage.setHardState(r.hardState);
  checker.onPersisted(nodeId, { entries: r.entries, hardState: r.hardState, snapshot: r.snapshot?.metadata }, storage);
}

function violation(run: () => void): string {
  try {
    run();
  } catch (error) {
    if (error instanceof SafetyViolation) return error.property;
    throw error;
  }
  return 'none';
}

describe('InvariantChecker', () => {
  it('flags two leaders in one term', () => {
    const checker = new InvariantChecker();
    checker.onLeader('n1', 3);
    checker.onLeader('n1', 3);
    expect(violation(() => checker.onLeader('n2', 3))).toBe('election safety');
  });

  it('flags a persisted term going backwards and a changed vote', () => {
    const checker = new InvariantChecker();
    const storage = new MemoryStorage();
    persist(checker, 'n1', storage, ready([], { term: 5, vote: 'n2', commit: 0 }));
    expect(violation(() => persist(checker, 'n1', storage, ready([], { term: 5, vote: 'n3', commit: 0 })))).toBe('durable vote');
    expect(violation(() => persist(checker, 'n1', storage, ready([], { term: 4, vote: NONE, commit: 0 })))).toBe('durable term');
  });

  it('flags two different entries with the same index and term', () => {
    const checker = new InvariantChecker();
    persist(checker, 'n1', new MemoryStorage(), ready([entry(1, 1, 'a')]));
    expect(violation(() => persist(checker, 'n2', new MemoryStorage(), ready([entry(1, 1, 'b')])))).toBe('log matching');
  });

  it('flags replicas committing different entries at one index', () => {
    const checker = new InvariantChecker();
    persist(checker, 'n1', new MemoryStorage(), ready([entry(1, 1), entry(2, 1)], { term: 1, vote: NONE, commit: 2 }));
    const storage = new MemoryStorage();
    expect(
      violation(() => persist(checker, 'n2', storage, ready([entry(1, 1), entry(2, 2)], { term: 2, vote: NONE, commit: 2 }))),
    ).toBe('state machine safety');
  });

  it('allows a divergent uncommitted suffix but not a leader missing a committed entry', () => {
    const checker = new InvariantChecker();
    persist(checker, 'n1', new MemoryStorage(), ready([entry(1, 1), entry(2, 2)], { term: 2, vote: NONE, commit: 2 }));
    const stale = new MemoryStorage();
    // A deposed leader of term 1 appending at index 2: legal, it never saw index 2 committed.
    persist(checker, 'n2', stale, ready([entry(1, 1), entry(2, 1)], { term: 1, vote: NONE, commit: 1 }));
    // A leader of term 3 without the entry committed at index 2 in term 2: illegal.
    expect(
      violation(() => persist(checker, 'n2', stale, ready([entry(3, 3)], { term: 3, vote: 'n2', commit: 1 }), 3)),
    ).toBe('leader completeness');
  });

  it('flags applying out of order, applying beyond commit and a live commit going backwards', () => {
    const checker = new InvariantChecker();
    checker.onRestart('n1', { term: 1, vote: NONE, commit: 2 }, 0);
    checker.onApplied('n1', entry(1, 1), 1);
    expect(violation(() => checker.onApplied('n1', entry(3, 1), 1))).toBe('applied in order');
    checker.onApplied('n1', entry(2, 1), 1);
    expect(violation(() => checker.onApplied('n1', entry(3, 1), 1))).toBe('apply only committed');
    expect(violation(() => checker.onCommit('n1', 1))).toBe('monotonic commit');
  });

  it('flags a message that vouches for what is not on its sender\'s disk yet', () => {
    const checker = new InvariantChecker();
    const disk = new MemoryStorage();
    disk.append([entry(1, 2), entry(2, 2)]);
    disk.setHardState({ term: 2, vote: 'n2', commit: 1 });
    const message = (fields: Partial<Message>): Message => ({
      type: 'appResp', from: 'n1', to: 'n2', term: 2, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...fields,
    });
    checker.onSent('n1', message({ type: 'voteResp' }), disk);
    checker.onSent('n1', message({ type: 'appResp', index: 2 }), disk);
    checker.onSent('n1', message({ type: 'heartbeat', commit: 2 }), disk);
    expect(violation(() => checker.onSent('n1', message({ type: 'voteResp', to: 'n3' }), disk))).toBe('durable before sent');
    expect(violation(() => checker.onSent('n1', message({ type: 'appResp', index: 3 }), disk))).toBe('durable before sent');
    expect(violation(() => checker.onSent('n1', message({ type: 'app', commit: 3 }), disk))).toBe('durable before sent');
    // A rejection vouches for nothing; a later term on disk supersedes what a message vouched for.
    checker.onSent('n1', message({ type: 'appResp', index: 3, reject: true }), disk);
    disk.setHardState({ term: 3, vote: NONE, commit: 1 });
    checker.onSent('n1', message({ type: 'voteResp', to: 'n3' }), disk);
  });

  it('flags a log matching violation between persisted logs', () => {
    const checker = new InvariantChecker();
    const a = new MemoryStorage();
    const b = new MemoryStorage();
    a.append([entry(1, 1, 'x'), entry(2, 2)]);
    b.append([entry(1, 1, 'y'), entry(2, 2)]);
    expect(violation(() => checker.checkLogMatching(new Map([['a', a], ['b', b]])))).toBe('log matching');
  });
});
