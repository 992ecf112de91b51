// Single-node helpers for tests that drive one RawNode message by message.
import { defaultRaftConfig } from '../../src/raft/config.js';
import { buildMessage, type MessageInit } from '../../src/raft/messages.js';
import { MemoryStorage, confStateOf } from '../../src/raft/memory-storage.js';
import { RawNode } from '../../src/raft/raw-node.js';
import { NONE, type Entry, type HardState, type Message, type NodeId, type RaftConfig, type Ready } from '../../src/raft/types.js';
import { seededRandom } from './network.js';

export interface SoloNode {
  readonly node: RawNode;
  readonly storage: MemoryStorage;
}

export function entriesWithTerms(terms: readonly number[], from = 1): Entry[] {
  return terms.map((term, i) => ({ index: from + i, term, type: 'normal', data: new Uint8Array() }));
}

export function soloNode(options: {
  id: NodeId;
  voters: readonly NodeId[];
  learners?: readonly NodeId[];
  logTerms?: readonly number[];
  hardState?: Partial<HardState>;
  configure?: (config: RaftConfig) => RaftConfig;
}): SoloNode {
  // Index-0 membership keeps message-level tests' indexes small and exact (log starts at 1).
  const storage = new MemoryStorage(confStateOf(options.voters, options.learners ?? []));
  const logTerms = options.logTerms ?? [];
  storage.append(entriesWithTerms(logTerms));
  const lastTerm = logTerms[logTerms.length - 1] ?? 0;
  storage.setHardState({ term: lastTerm, vote: NONE, commit: 0, ...options.hardState });
  let config = defaultRaftConfig(options.id, storage, seededRandom(42));
  if (options.configure) config = options.configure(config);
  return { node: new RawNode(config), storage };
}

/** Takes the Ready, persists it like a host, advances; returns it. */
export function drain(solo: SoloNode): Ready {
  const ready = solo.node.ready();
  if (ready.snapshot !== undefined) solo.storage.applySnapshot(ready.snapshot);
  solo.storage.append(ready.entries);
  if (ready.hardState !== undefined) solo.storage.setHardState(ready.hardState);
  solo.node.advance(ready);
  return ready;
}

export function message(init: MessageInit & { from: NodeId; term: number }): Message {
  return buildMessage(init, init.from, init.term);
}

export const noPreVote = (config: RaftConfig): RaftConfig => ({ ...config, preVote: false });
export const noPreVoteNoCheckQuorum = (config: RaftConfig): RaftConfig => ({ ...config, preVote: false, checkQuorum: false });
