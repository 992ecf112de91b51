// What happened in a run, for the person replaying a failing seed: printed live with --verbose,
// otherwise only the most recent lines are kept and printed with the failure.

import type { VirtualMs } from './scheduler.js';

/** Lines kept for a failure report when not verbose. */
const traceLinesKeptMax = 400;

export class Trace {
  private readonly recent: string[] = [];
  private nextSlot = 0;

  constructor(
    private readonly clock: () => VirtualMs,
    readonly verbose: boolean,
  ) {}

  log(line: string): void {
    const stamped = `[${String(this.clock()).padStart(6)}ms] ${line}`;
    if (this.verbose) console.log(stamped);
    if (this.recent.length < traceLinesKeptMax) this.recent.push(stamped);
    else {
      this.recent[this.nextSlot] = stamped;
      this.nextSlot = (this.nextSlot + 1) % traceLinesKeptMax;
    }
  }

  /** The kept lines, oldest first. */
  tail(): string[] {
    return [...this.recent.slice(this.nextSlot), ...this.recent.slice(0, this.nextSlot)];
  }
}
