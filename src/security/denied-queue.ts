// Refused requests waiting to become audit records: a node's gate keeps them for its next
// heartbeat, the control plane for its next audit.denied entry. Bounded: past `countMax` an
// attempt is counted, not kept, and the count goes out as one attempt that says so, so that a
// flood of refusals grows neither memory nor the log without bound.
import type { DeniedAttempt } from './request-gate.js';

/** Longest text kept of an attempt's reason or request line, in characters. */
const textCharsMax = 300;

export class DeniedQueue {
  private readonly queue: DeniedAttempt[] = [];
  private droppedCount = 0;

  /** `surface` names where the dropped ones were refused, in the attempt that counts them. */
  constructor(
    private readonly surface: string,
    readonly countMax: number,
  ) {}

  get size(): number {
    return this.queue.length;
  }

  push(attempt: DeniedAttempt): void {
    if (this.queue.length >= this.countMax) {
      this.droppedCount += 1;
      return;
    }
    this.queue.push({ ...attempt, actor: attempt.actor.slice(0, 64), surface: attempt.surface.slice(0, 80), request: attempt.request.slice(0, textCharsMax), reason: attempt.reason.slice(0, textCharsMax), source: attempt.source.slice(0, 80) });
  }

  /** The oldest `max` attempts, the count of dropped ones last (as one attempt) when it fits. */
  take(max: number): DeniedAttempt[] {
    const taken = this.queue.splice(0, max);
    if (this.droppedCount > 0 && taken.length < max) {
      taken.push({ at: Date.now(), surface: this.surface, actor: 'unknown', request: 'many', reason: `${this.droppedCount} more denied attempts arrived while ${this.countMax} waited: not recorded one by one`, source: 'many' });
      this.droppedCount = 0;
    }
    return taken;
  }

  /** Puts back what `take` gave (it could not be sent); what no longer fits is counted. */
  giveBack(attempts: readonly DeniedAttempt[]): void {
    const room = Math.max(0, this.countMax - this.queue.length);
    this.queue.unshift(...attempts.slice(0, room));
    this.droppedCount += attempts.length - Math.min(attempts.length, room);
  }
}
