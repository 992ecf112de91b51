// The two ways a group can fail a caller. An operating error (no leader, no quorum, a deadline,
// too many waiters) is a GroupUnavailableError: the caller may retry, and the outcome of a
// proposal that failed this way is unknown. A broken invariant of the host itself is a
// programmer error: the group stops and hands it to its fatal handler, which in a node process
// ends the process (memory can no longer be trusted to match the disk).
import { LogUnavailableError } from '../state/proposer.js';

export class GroupUnavailableError extends LogUnavailableError {}

/** The group refused the entry before it could reach the log (no leader, a stopped group, too
 *  many waiting, the core dropping it): it was certainly not applied, and a retry cannot apply it
 *  twice. The answer says so in `X-Lockstep-Outcome: not-applied`; any other failure of a
 *  proposal leaves its outcome unknown. */
export class NotAppliedError extends GroupUnavailableError {
  constructor(detail: string) {
    super(detail, { 'X-Lockstep-Outcome': 'not-applied' });
  }
}

/** A host invariant does not hold (an out-of-order apply, a Ready handled twice). */
export class GroupInvariantError extends Error {
  constructor(message: string) {
    super(`group host invariant violated: ${message}`);
  }
}

export function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new GroupInvariantError(message);
}

/** What the host does with an error that must stop it. */
export type FatalHandler = (error: unknown, context: string) => void;
