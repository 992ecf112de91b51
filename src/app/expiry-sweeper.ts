// Deletes expired records (@table(expiration: seconds)) through the log, so every replica
// removes them at the same index and subscribers see the deletes. Reads already hide expired
// records; this reclaims their space. Each delete is conditional on the record still being at
// the version that expired, so a record rewritten meanwhile survives.
import type { ReadDependency, WriteOp } from '../model/app-entries.js';
import type { AppHost } from './app-host.js';
import { isExpired } from './transaction.js';

/** Records examined per table per sweep: bounds the time one sweep holds the event loop. */
export const sweepExamineMax = 2_000;
/** Deletes per proposed entry. */
export const sweepDeletesMax = 500;
export const sweepIntervalMs = 1_000;

export class ExpirySweeper {
  private readonly cursors = new Map<string, string | number>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;

  constructor(private readonly host: AppHost) {}

  start(): void {
    this.timer = setInterval(() => void this.sweepOnce(), sweepIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  /** One pass over a bounded slice of every expiring table; returns how many records it deleted. */
  async sweepOnce(nowMs = Date.now()): Promise<number> {
    const runtime = this.host.activeRuntime();
    if (runtime === undefined || this.running) return 0;
    this.running = true;
    let deleted = 0;
    try {
      for (const table of runtime.schema.tables.values()) {
        if (table.expirationSeconds === undefined) continue;
        const db = runtime.store.table(table.name);
        const reads: ReadDependency[] = [];
        const writes: WriteOp[] = [];
        let examined = 0;
        let last: string | number | undefined;
        const start = this.cursors.get(table.name);
        for (const { key, value } of db.getRange(start === undefined ? {} : { start })) {
          if (examined++ >= sweepExamineMax || writes.length >= sweepDeletesMax) break;
          const id = key as string | number;
          last = id;
          if (!isExpired(table, value, nowMs)) continue;
          reads.push({ table: table.name, id, expectedIndex: value.i });
          writes.push({ op: 'delete', table: table.name, id });
        }
        // Wrap around at the end of the table; otherwise continue after the last key next time.
        if (examined <= sweepExamineMax && writes.length < sweepDeletesMax) this.cursors.delete(table.name);
        else if (last !== undefined) this.cursors.set(table.name, last);
        if (writes.length === 0) continue;
        const proposal = await this.host.propose({ kind: 'write', version: runtime.version, reads, writes, ts: nowMs });
        if (proposal.result.ok) deleted += writes.length;
      }
    } finally {
      this.running = false;
    }
    return deleted;
  }
}
