// An app's state machine behind a one-voter Raft group on real LMDB files: the log `lockstep
// dev` writes through, without the app host around it, for tests of apply itself.
import { systemClock } from '../../src/group/clock.js';
import { noTransport } from '../../src/group/no-transport.js';
import { RaftGroup } from '../../src/group/raft-group.js';
import { createLogger } from '../../src/observability/logger.js';
import type { ChangeEvent } from '../../src/model/change-event.js';
import type { LogEntry } from '../../src/model/app-entries.js';
import { appEntryCodec } from '../../src/state/entry-codec.js';
import type { Proposal } from '../../src/state/proposer.js';
import { SchemaCache } from '../../src/state/schema-cache.js';
import { StateMachine, type ApplyOutcome } from '../../src/state/state-machine.js';
import { AppStore } from '../../src/storage/app-store.js';
import { LmdbRaftStorage } from '../../src/storage/raft-storage.js';

export interface SingleGroup {
  readonly store: AppStore;
  readonly machine: StateMachine;
  readonly group: RaftGroup<LogEntry, ApplyOutcome>;
  /** Every change event, in the order they became durable. */
  readonly events: ChangeEvent[];
  /** Errors the group stopped on. */
  readonly fatal: unknown[];
  propose(entry: LogEntry): Promise<Proposal>;
  close(): Promise<void>;
}

export async function openSingleGroup(dir: string, changeWindowEntries = 10_000): Promise<SingleGroup> {
  const store = AppStore.open(dir);
  const machine = new StateMachine(store, new SchemaCache(store), { changeWindowEntries });
  const events: ChangeEvent[] = [];
  const fatal: unknown[] = [];
  machine.onApplied((outcomes) => {
    for (const outcome of outcomes) events.push(...outcome.result.events);
  });
  const group = new RaftGroup<LogEntry, ApplyOutcome>({
    groupId: 'test',
    nodeId: 'dev',
    storage: new LmdbRaftStorage(store.root),
    machine,
    codec: appEntryCodec,
    snapshots: undefined,
    transport: noTransport,
    clock: systemClock,
    logger: createLogger({ test: 'single-group' }),
    metrics: { leaderChanged: () => undefined, proposed: () => undefined, readyPersisted: () => undefined, committed: () => undefined, snapshot: () => undefined },
    initialVoters: ['dev'],
    electionTicks: 10,
    heartbeatTicks: 1,
    snapshotEveryEntries: 1_000_000,
    compactMarginEntries: 1_000,
    onFatal: (error) => fatal.push(error),
  });
  const ticker = setInterval(() => group.tick(), 20);
  return {
    store,
    machine,
    group,
    events,
    fatal,
    propose: async (entry) => {
      const committed = await group.propose(entry, 5_000);
      return { index: committed.index, result: committed.result.result };
    },
    close: async () => {
      clearInterval(ticker);
      group.stop();
      await store.close();
    },
  };
}
