// The single-node log: a Proposer that appends an entry and applies it in the same LMDB write
// transaction. lmdb-js batches the transactions of one event turn into one commit, so one
// fsync covers every proposal of that turn (group commit). The proposal resolves only after
// that commit is durable, and only then do readers and subscribers see the new applied index.
import type { ChangeEvent } from '../model/change-event.js';
import type { LogIndex } from '../model/ids.js';
import type { LogEntry } from '../model/app-entries.js';
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

  /** Whether the log still accepts proposals (false after a failed commit, until restart). */
  healthy(): boolean {
    return this.failure === undefined;
  }

  propose(entry: LogEntry): Promise<Proposal> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    let index = 0;
    let outcome: ApplyOutcome | undefined;
    let state: AppliedState | undefined;
    let callbackError: unknown;
    // A child transaction per proposal: if appending or applying this entry throws, only its
    // own writes are rolled back, and the other proposals of the same commit are unaffected.
    const committed = this.store.root.childTransaction(() => {
      try {
        index = this.lastIndex + 1;
        this.store.log.putSync(index, entry);
        const expired = index - this.options.retainEntries;
        if (expired >= 1) this.store.log.removeSync(expired);
        outcome = this.stateMachine.apply(index, entry);
        state = this.stateMachine.pendingState();
        this.lastIndex = index;
      } catch (error) {
        callbackError = error ?? new Error('apply failed');
        throw error;
      }
    });
    return committed.then(
      () => {
        if (outcome === undefined || state === undefined) throw new Error('transaction committed without applying');
        this.onCommit(index, outcome.events, state);
        return { index, result: outcome.result };
      },
      (error: unknown) => {
        // This entry's own writes were rolled back and the index not taken: nothing to repair.
        if (callbackError !== undefined) throw error;
        // The commit itself failed: the in-memory index is ahead of the file. Refuse everything
        // after it rather than apply on top of a state that does not exist; a restart recovers.
        this.failure = error instanceof Error ? error : new Error(String(error));
        throw this.failure;
      },
    );
  }
}
