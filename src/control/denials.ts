// Denied attempts on their way into the audit trail: refusals seen by the control API, and
// those nodes report in their heartbeats, gathered and proposed as one audit.denied entry per
// batch (each attempt becomes its own audit record). Bounded: a flood of refused requests fills
// the queue, and what does not fit is counted and recorded as one attempt that says so, rather
// than growing memory or the log without bound.
import type { Logger } from '../observability/logger.js';
import { DeniedQueue } from '../security/denied-queue.js';
import type { DeniedAttempt } from './commands.js';

/** Attempts in one audit.denied entry. */
export const attemptsPerEntryMax = 100;
/** Attempts waiting to be proposed. */
export const queuedAttemptsMax = 2_000;
/** How long attempts gather before they are proposed. */
export const flushEveryMs = 200;

export class DeniedAttempts {
  private readonly queue = new DeniedQueue('control', queuedAttemptsMax);
  private timer: NodeJS.Timeout | undefined;
  private flushing = false;

  constructor(
    private readonly propose: (attempts: readonly DeniedAttempt[]) => Promise<unknown>,
    private readonly logger: Logger,
  ) {}

  record(attempt: DeniedAttempt): void {
    this.queue.push(attempt);
    this.timer ??= setTimeout(() => void this.flush(), flushEveryMs);
  }

  /** Attempts not yet proposed. */
  pending(): number {
    return this.queue.size;
  }

  private async flush(): Promise<void> {
    this.timer = undefined;
    if (this.flushing) {
      this.timer = setTimeout(() => void this.flush(), flushEveryMs);
      return;
    }
    this.flushing = true;
    try {
      for (let batch = this.queue.take(attemptsPerEntryMax); batch.length > 0; batch = this.queue.take(attemptsPerEntryMax)) {
        try {
          await this.propose(batch);
        } catch (error) {
          // Not the leader any more, or no quorum: the attempts are put back for the next try.
          this.queue.giveBack(batch);
          this.logger.warn({ err: error, attempts: batch.length }, 'could not record denied attempts yet');
          this.timer ??= setTimeout(() => void this.flush(), flushEveryMs * 5);
          return;
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
