// Leader transfer, CheckQuorum, snapshots, learners, joint consensus and backpressure.
import { describe, expect, it } from 'vitest';
import { ProposalDroppedError } from '../../src/raft/types.js';
import { MemoryStorage, confStateOf } from '../../src/raft/memory-storage.js';
import { Network } from './network.js';

const text = (value: string): Uint8Array => new TextEncoder().encode(value);

describe('leader transfer', () => {
  it('hands leadership to an up-to-date follower in one step', () => {
    const network = new Network(['n1', 'n2', 'n3']);
    network.campaign('n1');
    network.node('n1').transferLeadership('n2');
    network.deliverAll();
    expect(network.leaderIds()).toEqual(['n2']);
  });

  it('catches a lagging transferee up first, and hands the proposals made meanwhile to it', () => {
    const network = new Network(['n1', 'n2', 'n3']);
    network.campaign('n1');
    network.isolate('n3');
    network.propose('n1', 'a');
    network.heal();
    network.dropIf = (m) => m.to === 'n3' && m.type === 'app';
    network.node('n1').transferLeadership('n3');
    network.deliverAll();
    expect(network.node('n1').status().leadTransferee).toBe('n3');
    // Held, not refused and not appended: the new leader appends it once it leads.
    network.node('n1').propose(text('b'));
    network.deliverAll();
    expect(network.appliedTexts('n2')).toEqual(['a']);
    network.dropIf = () => false;
    network.tickAll(1);
    network.deliverAll();
    expect(network.leaderIds()).toEqual(['n3']);
    expect(network.appliedTexts('n3')).toEqual(['a', 'b']);
    expect(network.appliedTexts('n1')).toEqual(['a', 'b']);
  });

  it('appends the proposals held during a transfer that failed, exactly once', () => {
    const network = new Network(['n1', 'n2', 'n3']);
    network.campaign('n1');
    network.isolate('n3');
    network.propose('n1', 'a');
    network.node('n1').transferLeadership('n3');
    network.node('n1').propose(text('b'));
    network.propose('n2', 'c'); // forwarded to n1 and held there too
    network.tickAll(10); // the transfer times out
    network.deliverAll();
    expect(network.node('n1').status().leadTransferee).toBe('');
    expect(network.leaderIds()).toEqual(['n1']);
    expect(network.appliedTexts('n2')).toEqual(['a', 'b', 'c']);
  });

  it('gives up a transfer that does not finish within an election timeout', () => {
    const network = new Network(['n1', 'n2', 'n3']);
    network.campaign('n1');
    network.isolate('n3');
    network.propose('n1', 'a');
    network.node('n1').transferLeadership('n3');
    network.tickAll(10);
    expect(network.node('n1').status().leadTransferee).toBe('');
    network.propose('n1', 'b');
    expect(network.appliedTexts('n2')).toEqual(['a', 'b']);
  });
});

describe('CheckQuorum', () => {
  it('a leader cut off from a quorum steps down within an election timeout', () => {
    const network = new Network(['n1', 'n2', 'n3']);
    network.campaign('n1');
    network.isolate('n1');
    network.tickAll(25);
    expect(network.node('n1').status().softState.role).toBe('follower');
    const leaders = network.leaderIds();
    expect(leaders).toHaveLength(1);
    expect(leaders[0]).not.toBe('n1');
  });
});

describe('snapshots and compaction', () => {
  it('a follower behind the compaction point catches up from a snapshot', () => {
    const network = new Network(['n1', 'n2', 'n3']);
    network.campaign('n1');
    network.isolate('n3');
    for (let i = 0; i < 5; i++) network.propose('n1', `e${i}`);
    const storage = network.storages.get('n1')!;
    const applied = network.applied.get('n1')!;
    const appliedIndex = applied[applied.length - 1]!.index;
    storage.createSnapshot(appliedIndex, confStateOf(['n1', 'n2', 'n3']), text('state'));
    storage.compact(appliedIndex);
    network.heal();
    network.tickAll(3);
    const received = network.readies.get('n3')!.find((ready) => ready.snapshot !== undefined);
    expect(received?.snapshot?.metadata.index).toBe(appliedIndex);
    network.propose('n1', 'after');
    expect(network.appliedTexts('n3')).toEqual(['after']); // earlier entries came in the snapshot
    expect(network.node('n1').status().progress!.get('n3')).toMatchObject({ state: 'replicate', match: appliedIndex + 1 });
  });
});

describe('learners and membership changes', () => {
  it('adds a node as a learner first, then promotes it to voter', () => {
    const network = new Network(['n1', 'n2', 'n3']);
    network.campaign('n1');
    network.propose('n1', 'a');
    network.addNode('n4'); // empty storage: learns the membership from the leader
    network.node('n1').proposeConfChange({ changes: [{ type: 'addLearner', nodeId: 'n4' }], transition: 'auto' });
    network.deliverAll();
    network.tickAll(2);
    expect(network.appliedTexts('n4')).toEqual(['a']);
    expect(network.confStates.get('n4')).toEqual(confStateOf(['n1', 'n2', 'n3'], ['n4']));
    // A learner never campaigns and its acknowledgements do not count towards commit.
    network.node('n4').campaign();
    network.deliverAll();
    expect(network.node('n4').status().softState.role).toBe('follower');
    network.node('n1').proposeConfChange({ changes: [{ type: 'addNode', nodeId: 'n4' }], transition: 'auto' });
    network.deliverAll();
    for (const id of ['n1', 'n2', 'n3', 'n4']) expect(network.confStates.get(id)).toEqual(confStateOf(['n1', 'n2', 'n3', 'n4']));
    // A restarted member rebuilds the membership by replaying the conf changes in its log.
    network.restart('n2');
    network.deliverAll();
    expect(network.node('n2').status().confState).toEqual(confStateOf(['n1', 'n2', 'n3', 'n4']));
    // Now four voters: three are needed.
    network.isolate('n3');
    network.isolate('n4');
    network.propose('n1', 'b');
    expect(network.appliedTexts('n1')).toEqual(['a']);
  });

  it('replaces a voter through a joint configuration that it leaves automatically', () => {
    const network = new Network(['n1', 'n2', 'n3']);
    network.campaign('n1');
    network.addNode('n4');
    network.node('n1').proposeConfChange({
      changes: [
        { type: 'addNode', nodeId: 'n4' },
        { type: 'removeNode', nodeId: 'n3' },
      ],
      transition: 'auto',
    });
    network.deliverAll();
    network.tickAll(2);
    for (const id of ['n1', 'n2', 'n4']) expect(network.confStates.get(id)).toEqual(confStateOf(['n1', 'n2', 'n4']));
    const confEntries = network.applied.get('n1')!.filter((entry) => entry.type === 'confChange');
    expect(confEntries).toHaveLength(2); // enter joint, then the leader's automatic leave
    network.isolate('n3');
    network.propose('n1', 'x');
    expect(network.appliedTexts('n4')).toEqual(['x']);
  });

  it('stays in an explicit joint configuration until told to leave, committing with both majorities', () => {
    const network = new Network(['n1', 'n2', 'n3']);
    network.campaign('n1');
    for (const id of ['n4', 'n5']) network.addNode(id);
    network.node('n1').proposeConfChange({
      changes: [
        { type: 'addNode', nodeId: 'n4' },
        { type: 'addNode', nodeId: 'n5' },
        { type: 'removeNode', nodeId: 'n2' },
        { type: 'removeNode', nodeId: 'n3' },
      ],
      transition: 'joint',
    });
    network.deliverAll();
    network.tickAll(2);
    expect(network.confStates.get('n1')).toMatchObject({ voters: ['n1', 'n4', 'n5'], votersOutgoing: ['n1', 'n2', 'n3'] });
    // The old majority alone cannot commit while joint.
    network.isolate('n4');
    network.isolate('n5');
    network.propose('n1', 'blocked');
    expect(network.appliedTexts('n1')).toEqual([]);
    network.heal();
    network.tickAll(2);
    expect(network.appliedTexts('n1')).toEqual(['blocked']);
    network.node('n1').proposeConfChange({ changes: [], transition: 'auto' });
    network.deliverAll();
    expect(network.confStates.get('n5')).toEqual(confStateOf(['n1', 'n4', 'n5']));
  });

  it('a removed leader steps down and the rest elect a new one', () => {
    const network = new Network(['n1', 'n2', 'n3']);
    network.campaign('n1');
    network.node('n1').proposeConfChange({ changes: [{ type: 'removeNode', nodeId: 'n1' }], transition: 'auto' });
    network.deliverAll();
    network.tickAll(30);
    const leaders = network.leaderIds();
    expect(leaders).toHaveLength(1);
    expect(leaders[0]).not.toBe('n1');
    expect(network.confStates.get('n2')).toEqual(confStateOf(['n2', 'n3']));
  });
});

describe('backpressure', () => {
  it('drops proposals once uncommitted bytes exceed the bound, and accepts again after commit', () => {
    const network = new Network(['n1', 'n2', 'n3'], { configure: (c) => ({ ...c, maxUncommittedEntriesSizeBytes: 1000 }) });
    network.campaign('n1');
    network.isolate('n2');
    network.isolate('n3');
    let accepted = 0;
    let dropped = 0;
    for (let i = 0; i < 20; i++) {
      try {
        network.node('n1').propose(new Uint8Array(100));
        accepted++;
      } catch (error) {
        expect(error).toBeInstanceOf(ProposalDroppedError);
        dropped++;
      }
    }
    expect(accepted).toBe(10);
    expect(dropped).toBe(10);
    network.heal();
    network.tickAll(2);
    network.node('n1').propose(new Uint8Array(100));
  });

  it('hands out committed entries in Readies bounded by bytes', () => {
    const network = new Network(['n1'], { configure: (c) => ({ ...c, maxCommittedSizePerReadyBytes: 250 }) });
    network.campaign('n1');
    for (let i = 0; i < 6; i++) network.node('n1').propose(new Uint8Array(100));
    network.deliverAll();
    const sizes = network.readies.get('n1')!.map((r) => r.committedEntries.length).filter((n) => n > 0);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(3);
    expect(network.applied.get('n1')!.length).toBe(7);
  });
});

describe('storage-provided initial state', () => {
  it('a node that joins with an empty storage has no say until it learns the membership', () => {
    const storage = new MemoryStorage();
    const network = new Network(['n1']);
    const joiner = network.addNode('n9', storage);
    joiner.campaign();
    network.deliverAll();
    expect(joiner.status().softState.role).toBe('follower');
    expect(joiner.status().confState.voters).toEqual([]);
  });
});
