// The seam between request handling and replication: everything above it proposes entries and
// waits for their outcome; the log below it is local today and a Raft group tomorrow.
import type { ApplyResult, LogEntry } from '../model/app-entries.js';
import type { LogIndex } from '../model/ids.js';
import { Problem } from '../model/problem.js';

export interface Proposal {
  /** The log index the entry was committed and applied at. */
  readonly index: LogIndex;
  readonly result: ApplyResult;
}

export interface Proposer {
  /** Resolves once the entry is committed, durable and applied on this node. */
  propose(entry: LogEntry): Promise<Proposal>;
}

/** How long a client should wait before retrying a request the log could not take. */
const retryAfterSeconds = 1;

/** The log cannot take or confirm anything right now (no leader, no quorum, deadline passed).
 *  The outcome of a proposal that failed this way is unknown: it may still commit. A Problem of
 *  kind 'unavailable', so it reaches the client as a retryable answer without a special case. */
export class LogUnavailableError extends Problem {
  constructor(detail: string, headers: Readonly<Record<string, string>> = {}) {
    super('unavailable', { detail, headers: { 'Retry-After': String(retryAfterSeconds), ...headers } });
  }
}
