// Denied attempts on their way into the audit trail: refusals seen by the control API, and
// those nodes report in their heartbeats, gathered and proposed as one audit.denied entry per
// batch (each attempt becomes its own audit record). Bounded: a flood of refused requests fills
// the queue, and what does not fit is counted and recorded as one attempt that says so, rather
// than growing memory or the log without bound.
import type { Logger } from '../observability/logger.js';
import type { DeniedAttempt } from './commands.js';

/** Attempts in one audit.denied entry. */
export const attemptsPerEntryMax = 100;
/** Attempts waiting to be proposed. */
export const queuedAttemptsMax = 2_000;
/** How long attempts gather before they are proposed. */
export const flushEveryMs = 200;
/** Longest reason or request text kept, in characters. */
const textMax = 300;

export class DeniedAttempts {
  private readonly queue: DeniedAttempt[] = [];
  private dropped = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing = false;

  constructor(
    private readonly propose: (attempts: readonly DeniedAttempt[]) => Promise<unknown>,
    private readonly logger: Logger,
  ) {}

  record(attempt: DeniedAttempt): void {
    if (this.queue.length >= queuedAttemptsMax) {
      this.dropped += 1;
    } else {
      this.queue.push({ ...attempt, reason: attempt.reason.slice(0, textMax), request: attempt.request.slice(0, textMax), actor: attempt.actor.slice(0, 64), surface: attempt.surface.slice(0, 80), source: attempt.source.slice(0, 80) });
    }
    this.timer ??= setTimeout(() => void this.flush(), flushEveryMs);
  }

  /** Attempts not yet proposed. */
  pending(): number {
    return this.queue.length;
  }

  private async flush(): Promise<void> {
    this.timer = undefined;
    if (this.flushing) {
      this.timer = setTimeout(() => void this.flush(), flushEveryMs);
      return;
    }
    this.flushing = true;
    try {
      while (this.queue.length > 0 || this.dropped > 0) {
        const batch = this.queue.splice(0, attemptsPerEntryMax);
        if (this.dropped > 0 && batch.length < attemptsPerEntryMax) {
          batch.push({ at: Date.now(), surface: 'control', actor: 'unknown', request: 'many', reason: `${this.dropped} more denied attempts arrived while ${queuedAttemptsMax} waited: not recorded one by one`, source: 'many' });
          this.dropped = 0;
        }
        try {
          await this.propose(batch);
        } catch (error) {
          // Not the leader any more, or no quorum: the attempts are put back for the next try.
          this.queue.unshift(...batch.slice(0, queuedAttemptsMax - this.queue.length));
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
