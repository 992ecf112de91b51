import { describe, expect, it } from 'vitest';
import { Network } from './network.js';

describe('a three-node cluster', () => {
  it('elects a leader and replicates a proposal to every node', () => {
    const network = new Network(['n1', 'n2', 'n3']);
    network.campaign('n1');
    expect(network.leaderIds()).toEqual(['n1']);
    network.propose('n1', 'hello');
    for (const id of ['n1', 'n2', 'n3']) expect(network.appliedTexts(id)).toEqual(['hello']);
  });

  it('elects a leader by ticking alone', () => {
    const network = new Network(['n1', 'n2', 'n3']);
    network.tickAll(40);
    expect(network.leaderIds()).toHaveLength(1);
    network.propose(network.leaderIds()[0]!, 'x');
    network.propose('n2', 'forwarded');
    for (const id of ['n1', 'n2', 'n3']) expect(network.appliedTexts(id)).toEqual(['x', 'forwarded']);
  });
});
