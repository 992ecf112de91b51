// One regression test per known way to get Raft wrong.
import { describe, expect, it } from 'vitest';
import { ProposalDroppedError, type HardState, type Message } from '../../src/raft/types.js';
import { Network } from './network.js';
import { drain, message, noPreVote, noPreVoteNoCheckQuorum, soloNode } from './harness.js';
import { confStateOf } from '../../src/raft/memory-storage.js';

describe('known pitfalls', () => {
  it('Figure 8: a leader never commits an entry of an earlier term by counting replicas', () => {
    // n1 holds an entry of term 2 that was never committed and wins the election of term 3.
    const solo = soloNode({ id: 'n1', voters: ['n1', 'n2', 'n3'], logTerms: [1, 2], hardState: { term: 2 }, configure: noPreVote });
    solo.node.campaign();
    drain(solo);
    solo.node.step(message({ type: 'voteResp', from: 'n2', to: 'n1', term: 3 }));
    drain(solo); // leader of term 3, empty entry at index 3
    // n2 acknowledges index 2: the term-2 entry is now on a majority (n1, n2)...
    solo.node.step(message({ type: 'appResp', from: 'n2', to: 'n1', term: 3, index: 2 }));
    drain(solo);
    // ...but it must not be committed: a node holding a different term-2 or term-3 history
    // could still be elected and overwrite it (Figure 8 (c)-(d)).
    expect(solo.node.status().hardState.commit).toBe(0);
    // Once the leader's own entry of term 3 is on a majority, everything up to it commits.
    solo.node.step(message({ type: 'appResp', from: 'n2', to: 'n1', term: 3, index: 3 }));
    const ready = drain(solo);
    expect(ready.hardState?.commit).toBe(3);
    expect(ready.committedEntries.map((e) => e.index)).toEqual([1, 2, 3]);
  });

  it('a vote is never granted to a candidate with a less up-to-date log', () => {
    const network = new Network(['n1', 'n2', 'n3'], { configure: noPreVoteNoCheckQuorum });
    network.campaign('n1');
    network.isolate('n3');
    network.propose('n1', 'a'); // n3 misses it
    network.heal();
    network.isolate('n1');
    network.campaign('n3'); // n2's log is longer: it must refuse
    expect(network.node('n3').status().softState.role).not.toBe('leader');
    expect(network.node('n2').status().hardState.vote).not.toBe('n3');
  });

  it('term and vote are handed to the host for persistence in the same Ready as the vote response', () => {
    // Run full elections; every granted vote response must travel in a Ready whose hard state
    // (already persisted, by the contract) records that vote, and every append acknowledgement
    // must cover only entries the host was handed to persist.
    const network = new Network(['n1', 'n2', 'n3', 'n4', 'n5'], { seed: 3 });
    network.tickAll(40);
    const leader = network.leaderIds()[0]!;
    network.propose(leader, 'a');
    network.isolate(leader);
    network.tickAll(40);
    network.heal();
    network.tickAll(10);
    let grantedVotes = 0;
    for (const [id, readies] of network.readies) {
      let persisted: HardState = { term: 0, vote: '', commit: 0 };
      let persistedLastIndex = 0;
      for (const ready of readies) {
        if (ready.hardState) persisted = ready.hardState;
        const last = ready.entries[ready.entries.length - 1];
        if (last) persistedLastIndex = last.index;
        if (ready.snapshot) persistedLastIndex = Math.max(persistedLastIndex, ready.snapshot.metadata.index);
        for (const m of ready.messages) {
          if (m.type === 'voteResp' && !m.reject) {
            grantedVotes++;
            expect({ id, term: persisted.term, vote: persisted.vote }).toEqual({ id, term: m.term, vote: m.to });
            expect(ready.mustSync || persisted.vote === m.to).toBe(true);
          }
          if (m.type === 'appResp' && !m.reject) expect(m.index).toBeLessThanOrEqual(persistedLastIndex);
        }
      }
    }
    expect(grantedVotes).toBeGreaterThanOrEqual(4);
  });

  it('ReadIndex is not served before the new leader committed an entry of its term', () => {
    const network = new Network(['n1', 'n2', 'n3']);
    network.dropIf = (m) => m.type === 'appResp';
    network.campaign('n1');
    expect(network.leaderIds()).toEqual(['n1']);
    const context = new TextEncoder().encode('read-1');
    network.node('n1').readIndex(context);
    network.deliverAll();
    network.node('n1').tick(); // heartbeats are answered, but the term's entry is not committed
    network.deliverAll();
    const readStates = () => network.readies.get('n1')!.flatMap((r) => r.readStates);
    expect(readStates()).toEqual([]);
    network.dropIf = () => false;
    network.tickAll(2);
    // Index 2: the leader's empty entry after the bootstrap snapshot at index 1.
    expect(readStates()).toEqual([{ index: 2, requestContext: context }]);
    expect(network.node('n1').status().hardState.commit).toBe(2);
  });

  it('ReadIndex in a single-voter group is answered at once; elsewhere it needs a heartbeat quorum', () => {
    const single = new Network(['n1']);
    single.campaign('n1');
    single.node('n1').readIndex(new Uint8Array([1]));
    single.deliverAll();
    expect(single.readies.get('n1')!.flatMap((r) => r.readStates)).toEqual([{ index: 2, requestContext: new Uint8Array([1]) }]);

    const network = new Network(['n1', 'n2', 'n3']);
    network.campaign('n1');
    network.isolate('n2');
    network.isolate('n3');
    network.node('n1').readIndex(new Uint8Array([2]));
    network.deliverAll();
    expect(network.readies.get('n1')!.flatMap((r) => r.readStates)).toEqual([]);
    network.heal();
    network.tickAll(1);
    expect(network.readies.get('n1')!.flatMap((r) => r.readStates)).toEqual([{ index: 2, requestContext: new Uint8Array([2]) }]);
    // A follower's read goes through the leader.
    network.node('n2').readIndex(new Uint8Array([3]));
    network.deliverAll();
    expect(network.readies.get('n2')!.flatMap((r) => r.readStates)).toEqual([{ index: 2, requestContext: new Uint8Array([3]) }]);
  });

  it('a rejoining partitioned node cannot force an election (PreVote + CheckQuorum)', () => {
    const rejoin = (configure?: Parameters<typeof noPreVote>[0] extends never ? never : typeof noPreVote) => {
      const network = new Network(['n1', 'n2', 'n3'], configure ? { configure } : {});
      network.campaign('n1');
      network.propose('n1', 'a');
      const termBefore = network.node('n1').status().hardState.term;
      network.isolate('n3');
      network.tickAll(100); // n3 times out again and again
      network.heal();
      network.tickAll(5);
      return { network, termBefore };
    };
    const guarded = rejoin();
    expect(guarded.network.leaderIds()).toEqual(['n1']);
    expect(guarded.network.node('n1').status().hardState.term).toBe(guarded.termBefore);
    expect(guarded.network.node('n3').status().hardState.term).toBe(guarded.termBefore);
    // Control: without the guards the rejoining node's inflated term deposes the leader.
    const unguarded = rejoin(noPreVoteNoCheckQuorum);
    expect(unguarded.network.node('n1').status().hardState.term).toBeGreaterThan(unguarded.termBefore);
  });

  it('a leader ignores vote requests while it is alive, unless they come from a leader transfer', () => {
    const network = new Network(['n1', 'n2', 'n3'], { configure: noPreVote });
    network.campaign('n1');
    const term = network.node('n2').status().hardState.term;
    network.node('n2').step(message({ type: 'vote', from: 'n3', to: 'n2', term: term + 1, index: 1, logTerm: term }));
    expect(network.node('n2').status().hardState.term).toBe(term); // stuck to n1
    network.node('n1').transferLeadership('n3');
    network.deliverAll();
    expect(network.leaderIds()).toEqual(['n3']);
    expect(network.node('n2').status().hardState.term).toBe(term + 1);
  });

  it('a conf change proposed before the new leader committed in its term is refused', () => {
    const network = new Network(['n1', 'n2', 'n3']);
    network.dropIf = (m) => m.type === 'appResp';
    network.campaign('n1');
    const addLearner = { changes: [{ type: 'addLearner' as const, nodeId: 'n4' }], transition: 'auto' as const };
    expect(() => network.node('n1').proposeConfChange(addLearner)).toThrow(ProposalDroppedError);
    network.dropIf = () => false;
    network.tickAll(2);
    network.node('n1').proposeConfChange(addLearner);
    network.deliverAll();
    expect(network.confStates.get('n2')).toEqual(confStateOf(['n1', 'n2', 'n3'], ['n4']));
    // One change at a time: a second one waits until the first is applied.
    network.dropIf = (m) => m.type === 'appResp';
    network.node('n1').proposeConfChange({ changes: [{ type: 'addLearner', nodeId: 'n5' }], transition: 'auto' });
    expect(() => network.node('n1').proposeConfChange({ changes: [{ type: 'addLearner', nodeId: 'n6' }], transition: 'auto' })).toThrow(
      ProposalDroppedError,
    );
  });

  it('a snapshot that conflicts with the follower log replaces it; a matching one only commits', () => {
    // The follower holds an uncommitted entry 3 of term 2; the leader's snapshot ends at 3 in term 3.
    // The host applied what was committed (as it would before the snapshot arrives).
    const conflicting = soloNode({ id: 'n3', voters: ['n1', 'n2', 'n3'], logTerms: [1, 1, 2, 2], hardState: { term: 2, commit: 1 }, configure: (c) => ({ ...c, applied: 1 }) });
    const snapshot = { metadata: { index: 3, term: 3, confState: confStateOf(['n1', 'n2', 'n3']) }, data: new Uint8Array([7]) };
    conflicting.node.step(message({ type: 'snap', from: 'n1', to: 'n3', term: 3, snapshot }));
    const ready = drain(conflicting);
    expect(ready.snapshot).toEqual(snapshot);
    expect(ready.messages).toMatchObject([{ type: 'appResp', to: 'n1', index: 3, reject: false }]);
    expect([conflicting.storage.lastIndex(), conflicting.storage.term(3)]).toEqual([3, 3]);
    expect(conflicting.node.status().hardState.commit).toBe(3);

    // Same snapshot index, matching term: keep the log (entry 4 too), fast-forward the commit.
    const matching = soloNode({ id: 'n3', voters: ['n1', 'n2', 'n3'], logTerms: [1, 1, 3, 3], hardState: { term: 3, commit: 1 } });
    matching.node.step(message({ type: 'snap', from: 'n1', to: 'n3', term: 3, snapshot }));
    const matchingReady = drain(matching);
    expect(matchingReady.snapshot).toBeUndefined();
    expect(matching.storage.lastIndex()).toBe(4);
    expect(matching.node.status().hardState.commit).toBe(3);
  });


  it('a forwarded proposal that bounces back to its origin is dropped silently (seeds 21139, 21571)', () => {
    // n3 forwarded a proposal to n1, which still believed n3 led and forwarded it back: the
    // message carries n3's id but is not the host's own call, so step() must not throw.
    const origin = soloNode({ id: 'n3', voters: ['n1', 'n2', 'n3'], logTerms: [1], hardState: { term: 1 } });
    const entry = { term: 0, index: 0, type: 'normal' as const, data: new Uint8Array([1]) };
    expect(() => origin.node.step(message({ type: 'prop', from: 'n3', to: 'n3', term: 0, entries: [entry] }))).not.toThrow();
    // The host's own proposal with no leader known is still refused to the caller.
    expect(() => origin.node.propose(new Uint8Array([2]))).toThrow(ProposalDroppedError);
  });

  it('a follower with committed entries not yet applied refuses a snapshot (seed 10275)', () => {
    // Entry 2 is committed but the host has not applied it: it may be a conf change on its way
    // through the host, which a restored configuration would then contradict.
    const behind = soloNode({ id: 'n3', voters: ['n1', 'n2', 'n3'], logTerms: [1, 1], hardState: { term: 1, commit: 2 }, configure: (c) => ({ ...c, applied: 1 }) });
    const snapshot = { metadata: { index: 5, term: 2, confState: confStateOf(['n1', 'n2', 'n3']) }, data: new Uint8Array([7]) };
    behind.node.step(message({ type: 'snap', from: 'n1', to: 'n3', term: 2, snapshot }));
    const ready = drain(behind);
    expect(ready.snapshot).toBeUndefined();
    expect(ready.messages).toMatchObject([{ type: 'appResp', to: 'n1', index: 2 }]);
    expect(behind.storage.lastIndex()).toBe(2);
  });
  it('an append acknowledgement from an older term is ignored', () => {
    const solo = soloNode({ id: 'n1', voters: ['n1', 'n2', 'n3'], logTerms: [1, 1], hardState: { term: 1 }, configure: noPreVote });
    solo.node.campaign();
    solo.node.step(message({ type: 'voteResp', from: 'n2', to: 'n1', term: 2 }));
    drain(solo);
    // An acknowledgement n2 sent to n1 when n1 led term 1: it vouches for a log we may have
    // since overwritten, and must not move match or commit.
    const stale: Message = message({ type: 'appResp', from: 'n2', to: 'n1', term: 1, index: 3 });
    solo.node.step(stale);
    expect(solo.node.status().progress!.get('n2')!.match).toBe(0);
    expect(solo.node.status().hardState.commit).toBe(0);
    solo.node.step({ ...stale, term: 2 });
    expect(solo.node.status().hardState.commit).toBe(3);
  });

  it('a follower commits no further than the entries this append matched', () => {
    const solo = soloNode({ id: 'n2', voters: ['n1', 'n2', 'n3'], logTerms: [1, 1, 1], hardState: { term: 1 } });
    solo.node.step(message({ type: 'app', from: 'n1', to: 'n2', term: 2, index: 1, logTerm: 1, commit: 3 }));
    expect(solo.node.status().hardState.commit).toBe(1);
  });
});
