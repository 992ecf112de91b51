// Proposals per second through a 3-node in-process raft cluster: instant network, MemoryStorage,
// host loop as in the Ready contract. Two regimes:
//  - batching off: one proposal, then Ready cycles until it is committed everywhere;
//  - batching on: many proposals per Ready cycle (entries share appends, persists and acks).
// Run: npx tsc -p tsconfig.json && node dist/bench/raft-throughput.js
import { performance } from 'node:perf_hooks';
import { defaultRaftConfig, MemoryStorage, RawNode, confStateOf, type Message, type NodeId } from '../src/raft/index.js';

const CASE_DURATION_MS = 3_000;
const PAYLOAD_BYTES = 128;
/** Compact the in-memory logs every so many applied entries so memory stays bounded. */
const COMPACT_EVERY_ENTRIES = 50_000;
const NODE_IDS: readonly NodeId[] = ['n1', 'n2', 'n3'];

interface Member {
  readonly node: RawNode;
  readonly storage: MemoryStorage;
  appliedIndex: number;
  compactedIndex: number;
}

interface CaseResult {
  readonly name: string;
  readonly proposalsPerCycle: number;
  readonly committed: number;
  readonly seconds: number;
  readonly readyCycles: number;
  readonly appendMessages: number;
  readonly appendedEntries: number;
}

function buildCluster(): Map<NodeId, Member> {
  const members = new Map<NodeId, Member>();
  let seed = 1;
  for (const id of NODE_IDS) {
    const storage = new MemoryStorage();
    storage.bootstrap(confStateOf(NODE_IDS));
    const fixedSeed = seed++;
    const node = new RawNode(defaultRaftConfig(id, storage, () => (fixedSeed * 0.173) % 1));
    members.set(id, { node, storage, appliedIndex: 0, compactedIndex: 0 });
  }
  return members;
}

function runCase(name: string, proposalsPerCycle: number): CaseResult {
  const members = buildCluster();
  const leader = members.get('n1')!;
  const queue: Message[] = [];
  let readyCycles = 0;
  let appendMessages = 0;
  let appendedEntries = 0;
  let leaderApplied = 0;
  let counting = false;

  // One host iteration per node, then deliver everything sent; until the cluster is quiet.
  const pump = (): void => {
    for (;;) {
      let progressed = false;
      for (const member of members.values()) {
        if (!member.node.hasReady()) continue;
        progressed = true;
        const ready = member.node.ready();
        if (counting) readyCycles++;
        if (ready.snapshot !== undefined) member.storage.applySnapshot(ready.snapshot);
        member.storage.append(ready.entries);
        if (ready.hardState !== undefined) member.storage.setHardState(ready.hardState);
        for (const message of ready.messages) {
          if (counting && message.type === 'app' && message.entries.length > 0) {
            appendMessages++;
            appendedEntries += message.entries.length;
          }
          queue.push(message);
        }
        for (const entry of ready.committedEntries) {
          member.appliedIndex = entry.index;
          if (member === leader && entry.data.byteLength > 0 && counting) leaderApplied++;
        }
        member.node.advance(ready);
        if (member.appliedIndex - member.compactedIndex >= COMPACT_EVERY_ENTRIES) {
          member.storage.createSnapshot(member.appliedIndex, confStateOf(NODE_IDS), new Uint8Array());
          member.storage.compact(member.appliedIndex);
          member.compactedIndex = member.appliedIndex;
        }
      }
      const batch = queue.splice(0);
      for (const message of batch) members.get(message.to)!.node.step(message);
      if (!progressed && batch.length === 0) return;
    }
  };

  leader.node.campaign();
  pump();
  const payload = new Uint8Array(PAYLOAD_BYTES);
  counting = true;
  const start = performance.now();
  let elapsedMs = 0;
  while (elapsedMs < CASE_DURATION_MS) {
    for (let i = 0; i < proposalsPerCycle; i++) leader.node.propose(payload);
    pump();
    elapsedMs = performance.now() - start;
  }
  return {
    name,
    proposalsPerCycle,
    committed: leaderApplied,
    seconds: elapsedMs / 1000,
    readyCycles,
    appendMessages,
    appendedEntries,
  };
}

function main(): void {
  const cases: Array<[string, number]> = [
    ['batching off', 1],
    ['batching on', 64],
    ['batching on', 512],
  ];
  const results = cases.map(([name, perCycle]) => runCase(name, perCycle));
  console.log(`raft throughput: 3 nodes, in-process instant network, MemoryStorage, ${PAYLOAD_BYTES}-byte payloads, ${CASE_DURATION_MS / 1000}s per case`);
  console.log('| case | proposals/cycle | committed | seconds | proposals/s | Ready cycles | entries/append |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    const perSecond = Math.round(r.committed / r.seconds);
    const entriesPerAppend = r.appendMessages === 0 ? 0 : r.appendedEntries / r.appendMessages;
    console.log(
      `| ${r.name} | ${r.proposalsPerCycle} | ${r.committed} | ${r.seconds.toFixed(2)} | ${perSecond} | ${r.readyCycles} | ${entriesPerAppend.toFixed(1)} |`,
    );
  }
}

main();
