// The single-node log: a Proposer that appends an entry and applies it in the same LMDB write
// transaction. lmdb-js batches the transactions of one event turn into one commit, so one
// fsync covers every proposal of that turn (group commit). The proposal resolves only after
// that commit is durable, and only then do readers and subscribers see the new applied index.
import type { ChangeEvent } from '../realtime/types.js';
import type { LogEntry, LogIndex } from '../state/entries.js';
import type { Proposal, Proposer } from '../state/proposer.js';
import type { AppliedState, ApplyOutcome, StateMachine } from '../state/state-machine.js';
import type { AppStore } from './app-store.js';

export interface LocalLogOptions {
  /** Applied entries kept in the log after they were applied (for inspection and replay). */
  readonly retainEntries: number;
}

/** Called after each entry's commit, in log order, before its proposer is answered. */
export type CommitListener = (index: LogIndex, events: readonly ChangeEvent[], state: AppliedState) => void;

export class LocalLog implements Proposer {
  private lastIndex: LogIndex;
  private failure: Error | undefined;

  constructor(
    private readonly store: AppStore,
    private readonly stateMachine: StateMachine,
    private readonly options: LocalLogOptions,
    private readonly onCommit: CommitListener,
  ) {
    this.lastIndex = stateMachine.pendingState().appliedIndex;
  }

  propose(entry: LogEntry): Promise<Proposal> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    let index = 0;
    let outcome: ApplyOutcome | undefined;
    let state: AppliedState | undefined;
    const committed = this.store.root.transaction(() => {
      index = this.lastIndex + 1;
      this.store.log.putSync(index, entry);
      const expired = index - this.options.retainEntries;
      if (expired >= 1) this.store.log.removeSync(expired);
      outcome = this.stateMachine.apply(index, entry);
      state = this.stateMachine.pendingState();
      this.lastIndex = index;
    });
    return committed.then(
      () => {
        if (outcome === undefined || state === undefined) throw new Error('transaction committed without applying');
        this.onCommit(index, outcome.events, state);
        return { index, result: outcome.result };
      },
      (error: unknown) => {
        // A failed commit leaves the in-memory index ahead of the file: refuse everything after it
        // rather than apply on top of a state that does not exist. A restart recovers from disk.
        this.failure = error instanceof Error ? error : new Error(String(error));
        throw this.failure;
      },
    );
  }
}
