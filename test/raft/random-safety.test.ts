// Randomized runs over a lossy, partitioning network with restarts: Election Safety (one leader
// per term) and State Machine Safety (applied logs are prefixes of each other) must hold, and
// the cluster must converge once the network heals. A failure prints its seed.
import { describe, expect, it } from 'vitest';
import type { Entry, NodeId } from '../../src/raft/types.js';
import { ProposalDroppedError } from '../../src/raft/types.js';
import { Network, seededRandom } from './network.js';

const SEEDS = 30;
const TICKS_PER_RUN = 300;
const NODE_IDS: readonly NodeId[] = ['n1', 'n2', 'n3', 'n4', 'n5'];

function sameEntry(a: Entry, b: Entry): boolean {
  return a.index === b.index && a.term === b.term && a.type === b.type && Buffer.from(a.data).equals(Buffer.from(b.data));
}

let totalConfChanges = 0;

function runSeed(seed: number): void {
  const random = seededRandom(seed);
  const network = new Network(NODE_IDS, { seed });
  let dropRate = 0;
  network.dropIf = () => random() < dropRate;
  const leaderOfTerm = new Map<number, NodeId>();
  let proposals = 0;
  let confChanges = 0;
  for (let tick = 0; tick < TICKS_PER_RUN; tick++) {
    const event = random();
    if (event < 0.03) {
      network.isolate(NODE_IDS[Math.floor(random() * NODE_IDS.length)]!);
    } else if (event < 0.06) {
      network.heal();
    } else if (event < 0.08) {
      dropRate = random() * 0.3;
    } else if (event < 0.09) {
      network.restart(NODE_IDS[Math.floor(random() * NODE_IDS.length)]!);
    } else if (event < 0.1) {
      const [leader] = network.leaderIds();
      if (leader !== undefined) network.node(leader).transferLeadership(NODE_IDS[Math.floor(random() * NODE_IDS.length)]!);
    }
    if (random() < 0.03) {
      // Demote n5 to learner or promote it back: membership changes under the same faults.
      const [leader] = network.leaderIds();
      const n5IsVoter = network.node('n5').status().confState.voters.includes('n5');
      try {
        network.node(leader ?? 'n1').proposeConfChange({ changes: [{ type: n5IsVoter ? 'addLearner' : 'addNode', nodeId: 'n5' }], transition: random() < 0.5 ? 'auto' : 'jointAutoLeave' });
        confChanges++;
      } catch (error) {
        if (!(error instanceof ProposalDroppedError)) throw error;
      }
    }
    if (random() < 0.5) {
      const proposer = NODE_IDS[Math.floor(random() * NODE_IDS.length)]!;
      try {
        network.node(proposer).propose(new TextEncoder().encode(`s${seed}p${proposals++}`));
      } catch (error) {
        if (!(error instanceof ProposalDroppedError)) throw error;
      }
    }
    network.tickAll(1);
    for (const id of network.leaderIds()) {
      const term = network.node(id).status().hardState.term;
      const known = leaderOfTerm.get(term);
      if (known !== undefined && known !== id) throw new Error(`seed ${seed}: two leaders in term ${term}: ${known} and ${id}`);
      leaderOfTerm.set(term, id);
    }
  }
  network.heal();
  dropRate = 0;
  network.tickAll(60);
  const [leader] = network.leaderIds();
  expect(leader, `seed ${seed}: no leader after healing`).toBeDefined();
  network.propose(leader!, 'final');
  totalConfChanges += confChanges;
  const logs = NODE_IDS.map((id) => network.applied.get(id)!);
  const longest = logs.reduce((a, b) => (a.length >= b.length ? a : b));
  for (const [position, log] of logs.entries()) {
    for (let i = 0; i < log.length; i++) {
      if (!sameEntry(log[i]!, longest[i]!)) throw new Error(`seed ${seed}: ${NODE_IDS[position]} applied a different entry at ${log[i]!.index}`);
    }
    expect(network.appliedTexts(NODE_IDS[position]!).at(-1), `seed ${seed}: ${NODE_IDS[position]} did not converge`).toBe('final');
  }
}

describe('randomized safety', () => {
  it(`holds for ${SEEDS} seeds of partitions, drops, restarts, transfers and membership changes`, () => {
    for (let seed = 1; seed <= SEEDS; seed++) runSeed(seed);
    expect(totalConfChanges).toBeGreaterThan(SEEDS); // membership changes were really exercised
  });
});
