// Deletes expired records (@table(expiration: seconds)) through the log, so every replica
// removes them at the same index and subscribers see the deletes. Reads already hide expired
// records; this reclaims their space. Each delete is conditional on the record still being at
// the version that expired, so a record rewritten meanwhile survives.
import { Problem } from '../model/problem.js';
import type { Logger } from '../observability/logger.js';
import type { AppHost } from './app-host.js';
import { RequestRunner } from './request-runner.js';
import { isExpired } from './transaction.js';

/** Records examined per table per sweep: bounds the time one sweep holds the event loop. */
export const sweepExamineMax = 2_000;
/** Deletes per proposed entry. */
export const sweepDeletesMax = 500;
export const sweepIntervalMs = 1_000;

/** A leader duty of the app's group (group/leader-duties.ts). */
export class ExpirySweeper {
  readonly name = 'expiry sweeper';
  private readonly cursors = new Map<string, string | number>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(
    private readonly host: AppHost,
    private readonly logger?: Logger,
  ) {}

  start(): void {
    this.stop();
    this.timer = setInterval(() => {
      this.sweepOnce().catch((error: unknown) => this.logger?.error({ err: error, app: this.host.name }, 'expiry sweep failed'));
    }, sweepIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One pass over a bounded slice of every expiring table; returns how many records it deleted.
   *  Each table's slice is one transaction through the request runner: a delete that conflicts
   *  with a write made meanwhile reruns the slice. */
  async sweepOnce(nowMs = Date.now()): Promise<number> {
    const runtime = this.host.activeRuntime();
    if (runtime === undefined || this.running) return 0;
    this.running = true;
    let deleted = 0;
    const runner = new RequestRunner(this.host, {}, undefined, 'lockstep:expiry');
    try {
      for (const table of runtime.schema.tables.values()) {
        if (table.expirationSeconds === undefined) continue;
        let next: string | number | undefined;
        const run = await runner.run(async ({ runtime: current, transaction }) => {
          const currentTable = current.schema.tables.get(table.name);
          if (currentTable?.expirationSeconds === undefined) return 0;
          let examined = 0;
          let count = 0;
          let last: string | number | undefined;
          const start = this.cursors.get(table.name);
          for (const { key, value } of current.store.table(table.name).getRange(start === undefined ? {} : { start })) {
            if (examined++ >= sweepExamineMax || count >= sweepDeletesMax) break;
            const id = key as string | number;
            last = id;
            if (!isExpired(currentTable, value, nowMs)) continue;
            transaction.deleteAtVersion(currentTable, id, value.i);
            count++;
          }
          // Wrap around at the end of the table; otherwise continue after the last key next time.
          next = examined <= sweepExamineMax && count < sweepDeletesMax ? undefined : last;
          return count;
        }, () => nowMs).catch((error: unknown) => {
          // A sweep that cannot commit now (no quorum, a lost leadership) runs again later.
          if (error instanceof Problem && (error.kind === 'unavailable' || error.kind === 'conflict')) return undefined;
          throw error;
        });
        if (run === undefined) continue;
        if (next === undefined) this.cursors.delete(table.name);
        else this.cursors.set(table.name, next);
        if (run.writeIndex !== undefined) deleted += run.value;
      }
    } finally {
      this.running = false;
    }
    return deleted;
  }
}
