// The Raft paper's rules, sentence by sentence (Ongaro & Ousterhout 2014, §5).
import { describe, expect, it } from 'vitest';
import { Network } from './network.js';
import { drain, message, noPreVote, noPreVoteNoCheckQuorum, soloNode } from './harness.js';

describe('§5.2 leader election', () => {
  it('a follower that hears nothing for an election timeout becomes a candidate and asks everyone for a vote', () => {
    const solo = soloNode({ id: 'n1', voters: ['n1', 'n2', 'n3'], configure: noPreVote });
    for (let tick = 0; tick < 2 * 10; tick++) solo.node.tick();
    const ready = drain(solo);
    expect(ready.softState?.role).toBe('candidate');
    expect(ready.hardState).toMatchObject({ term: 1, vote: 'n1' });
    expect(ready.messages.map((m) => [m.type, m.to, m.term])).toEqual([
      ['vote', 'n2', 1],
      ['vote', 'n3', 1],
    ]);
  });

  it('election timeouts are randomized in [electionTicks, 2*electionTicks)', () => {
    const firedAt = new Set<number>();
    for (let seed = 0; seed < 40; seed++) {
      const solo = soloNode({ id: 'n1', voters: ['n1', 'n2', 'n3'], configure: (c) => ({ ...noPreVote(c), random: () => (seed % 10) / 10 }) });
      for (let tick = 1; tick <= 20; tick++) {
        solo.node.tick();
        if (solo.node.status().softState.role === 'candidate') {
          firedAt.add(tick);
          break;
        }
      }
    }
    expect(Math.min(...firedAt)).toBe(10);
    expect(Math.max(...firedAt)).toBe(19);
  });

  it('a candidate that receives votes from a majority becomes leader and appends an empty entry', () => {
    const solo = soloNode({ id: 'n1', voters: ['n1', 'n2', 'n3'], configure: noPreVote });
    solo.node.campaign();
    drain(solo);
    solo.node.step(message({ type: 'voteResp', from: 'n2', to: 'n1', term: 1 }));
    const ready = drain(solo);
    expect(ready.softState).toEqual({ leaderId: 'n1', role: 'leader' });
    expect(ready.entries).toEqual([{ term: 1, index: 1, type: 'normal', data: new Uint8Array() }]);
    expect(ready.messages.filter((m) => m.type === 'app').map((m) => m.to)).toEqual(['n2', 'n3']);
  });

  it('a candidate rejected by a majority returns to follower', () => {
    const solo = soloNode({ id: 'n1', voters: ['n1', 'n2', 'n3'], configure: noPreVote });
    solo.node.campaign();
    solo.node.step(message({ type: 'voteResp', from: 'n2', to: 'n1', term: 1, reject: true }));
    solo.node.step(message({ type: 'voteResp', from: 'n3', to: 'n1', term: 1, reject: true }));
    expect(solo.node.status().softState.role).toBe('follower');
  });

  it('each server votes for at most one candidate in a given term, first come first served', () => {
    const solo = soloNode({ id: 'n1', voters: ['n1', 'n2', 'n3'], configure: noPreVoteNoCheckQuorum });
    solo.node.step(message({ type: 'vote', from: 'n2', to: 'n1', term: 1 }));
    solo.node.step(message({ type: 'vote', from: 'n3', to: 'n1', term: 1 }));
    solo.node.step(message({ type: 'vote', from: 'n2', to: 'n1', term: 1 })); // a retry is granted again
    const responses = drain(solo).messages.map((m) => [m.to, m.reject]);
    expect(responses).toEqual([
      ['n2', false],
      ['n3', true],
      ['n2', false],
    ]);
  });

  it('a candidate that hears from a leader of its term steps down and follows it', () => {
    const solo = soloNode({ id: 'n1', voters: ['n1', 'n2', 'n3'], configure: noPreVote });
    solo.node.campaign();
    solo.node.step(message({ type: 'app', from: 'n2', to: 'n1', term: 1 }));
    expect(solo.node.status().softState).toEqual({ leaderId: 'n2', role: 'follower' });
  });

  it('a node that sees a higher term adopts it and becomes a follower', () => {
    const network = new Network(['n1', 'n2', 'n3']);
    network.campaign('n1');
    network.node('n1').step(message({ type: 'heartbeat', from: 'n2', to: 'n1', term: 7 }));
    expect(network.node('n1').status().hardState.term).toBe(7);
    expect(network.node('n1').status().softState).toEqual({ leaderId: 'n2', role: 'follower' });
  });
});

describe('§5.3 log replication', () => {
  it('the leader commits an entry once a majority stored it, and followers learn the commit index', () => {
    const network = new Network(['n1', 'n2', 'n3', 'n4', 'n5']);
    network.campaign('n1');
    network.isolate('n4');
    network.isolate('n5');
    network.propose('n1', 'a');
    for (const id of ['n1', 'n2', 'n3']) expect(network.appliedTexts(id)).toEqual(['a']);
    expect(network.appliedTexts('n4')).toEqual([]);
    network.isolate('n3'); // two of five: nothing commits
    network.propose('n1', 'b');
    expect(network.appliedTexts('n1')).toEqual(['a']);
    network.heal();
    network.tickAll(2); // heartbeats make the leader resend to the lagging followers
    for (const id of ['n1', 'n2', 'n3', 'n4', 'n5']) expect(network.appliedTexts(id)).toEqual(['a', 'b']);
  });

  it('a follower rejects an append whose previous entry does not match, with a hint to skip the term', () => {
    const solo = soloNode({ id: 'n2', voters: ['n1', 'n2', 'n3'], logTerms: [1, 1, 2, 2, 2] });
    // The leader's entry 5 is from term 3: our whole term-2 run is suspect only down to the
    // last entry whose term is <= 3, which is 5 itself (term 2).
    solo.node.step(message({ type: 'app', from: 'n1', to: 'n2', term: 3, index: 5, logTerm: 3 }));
    // The leader's entry 5 is from term 1: every term-2 entry of ours conflicts; skip them all.
    solo.node.step(message({ type: 'app', from: 'n1', to: 'n2', term: 3, index: 5, logTerm: 1 }));
    const [first, second] = drain(solo).messages;
    expect(first).toMatchObject({ type: 'appResp', reject: true, index: 5, rejectHint: 5, rejectLogTerm: 2 });
    expect(second).toMatchObject({ type: 'appResp', reject: true, index: 5, rejectHint: 2, rejectLogTerm: 1 });
  });

  it('the leader forces a divergent follower log to match its own (Log Matching)', () => {
    const network = new Network(['n1', 'n2', 'n3']);
    network.campaign('n1');
    network.propose('n1', 'a');
    network.isolate('n1');
    // n1 keeps accepting proposals it can never commit.
    for (const text of ['lost1', 'lost2']) network.node('n1').propose(new TextEncoder().encode(text));
    network.deliverAll();
    network.tickAll(30); // n2 and n3 elect a new leader; n1 steps down (CheckQuorum)
    const [newLeader] = network.leaderIds();
    expect(newLeader).toMatch(/n2|n3/);
    network.propose(newLeader!, 'b');
    network.heal();
    network.tickAll(3);
    expect(network.leaderIds()).toEqual([newLeader]);
    for (const id of ['n1', 'n2', 'n3']) expect(network.appliedTexts(id)).toEqual(['a', 'b']);
    const logOf = (id: string) => {
      const storage = network.storages.get(id)!;
      return storage.entries(storage.firstIndex(), storage.lastIndex() + 1, Infinity);
    };
    expect(logOf('n1')).toEqual(logOf(newLeader!));
  });

  it('the leader pipelines appends up to maxInflightMsgs per follower', () => {
    const network = new Network(['n1', 'n2', 'n3'], { configure: (c) => ({ ...c, maxInflightMsgs: 2 }) });
    network.campaign('n1');
    network.dropIf = (m) => m.type === 'appResp';
    const sent = [];
    // One proposal per Ready, so that each would get its own append if nothing held them back.
    for (let i = 0; i < 10; i++) {
      network.node('n1').propose(new TextEncoder().encode(`p${i}`));
      sent.push(...network.takeMessages());
    }
    const sentToN2 = sent.filter((m) => m.type === 'app' && m.to === 'n2' && m.entries.length > 0);
    expect(sentToN2).toHaveLength(2);
  });

  it('proposals made between two Readies share one append per follower', () => {
    const network = new Network(['n1', 'n2', 'n3']);
    network.campaign('n1');
    for (let i = 0; i < 10; i++) network.node('n1').propose(new TextEncoder().encode(`p${i}`));
    const appends = network.takeMessages().filter((m) => m.type === 'app');
    expect(appends.map((m) => [m.to, m.entries.length])).toEqual([
      ['n2', 10],
      ['n3', 10],
    ]);
  });

  it('the leader batches entries into messages bounded by maxSizePerMsgBytes', () => {
    const network = new Network(['n1', 'n2', 'n3'], { configure: (c) => ({ ...c, maxSizePerMsgBytes: 250, maxInflightBytes: 0 }) });
    network.campaign('n1');
    network.isolate('n2');
    for (let i = 0; i < 6; i++) network.node('n1').propose(new Uint8Array(100));
    network.deliverAll();
    network.heal();
    const appends: number[] = [];
    network.dropIf = (m) => {
      if (m.type === 'app' && m.to === 'n2' && m.entries.length > 0) appends.push(m.entries.length);
      return false;
    };
    network.tickAll(2);
    expect(appends.length).toBeGreaterThanOrEqual(3);
    expect(Math.max(...appends)).toBe(2);
    expect(network.applied.get('n2')!.length).toBe(network.applied.get('n1')!.length);
  });
});

describe('§5.4 safety', () => {
  it('a voter denies its vote to a candidate whose log is less up to date (§5.4.1)', () => {
    for (const [index, logTerm, granted] of [
      [3, 1, false], // longer but older last term
      [1, 2, false], // same last term, shorter
      [2, 2, true],
      [1, 3, true],
    ] as const) {
      const solo = soloNode({ id: 'n2', voters: ['n1', 'n2', 'n3'], logTerms: [1, 2], configure: noPreVoteNoCheckQuorum });
      solo.node.step(message({ type: 'vote', from: 'n3', to: 'n2', term: 3, index, logTerm }));
      const ready = drain(solo);
      expect({ index, logTerm, reject: ready.messages[0]!.reject }).toEqual({ index, logTerm, reject: !granted });
      expect(ready.hardState?.vote).toBe(granted ? 'n3' : '');
    }
  });

  it('a restarted node keeps its term, vote and log', () => {
    const network = new Network(['n1', 'n2', 'n3']);
    network.campaign('n1');
    network.propose('n1', 'a');
    const before = network.node('n2').status().hardState;
    network.restart('n2');
    expect(network.node('n2').status().hardState).toEqual(before);
    network.tickAll(3);
    network.propose('n1', 'b');
    expect(network.appliedTexts('n2')).toEqual(['a', 'b']);
  });
});
