// The append messages a leader has sent to one follower and not yet seen acknowledged, as a
// ring buffer of (last index, payload bytes). Bounds pipelining by count and by bytes.
import type { LogIndex } from './types.js';
import { assert } from './util.js';

export class Inflights {
  /** Capacity in messages. */
  readonly countMax: number;
  /** Capacity in payload bytes; 0 means no byte bound. */
  readonly bytesMax: number;
  private start = 0;
  private count = 0;
  private bytes = 0;
  // Grown on demand up to countMax, so idle followers cost nothing.
  private indexes: LogIndex[] = [];
  private sizes: number[] = [];

  constructor(countMax: number, bytesMax: number) {
    assert(countMax > 0, 'inflights need room for at least one message');
    this.countMax = countMax;
    this.bytesMax = bytesMax;
  }

  clone(): Inflights {
    const copy = new Inflights(this.countMax, this.bytesMax);
    copy.start = this.start;
    copy.count = this.count;
    copy.bytes = this.bytes;
    copy.indexes = this.indexes.slice();
    copy.sizes = this.sizes.slice();
    return copy;
  }

  /** Records a message whose last entry is `index`; indexes must increase. */
  add(index: LogIndex, bytes: number): void {
    assert(!this.full(), 'cannot add to full inflights');
    let slot = this.start + this.count;
    if (slot >= this.countMax) slot -= this.countMax;
    if (slot >= this.indexes.length) this.grow();
    this.indexes[slot] = index;
    this.sizes[slot] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  private grow(): void {
    // Only called while the ring has not wrapped, so the live range is contiguous at 0.
    const capacity = Math.min(Math.max(this.indexes.length * 2, 4), this.countMax);
    this.indexes.length = capacity;
    this.sizes.length = capacity;
  }

  /** Frees every message up to and including `index` (they were acknowledged). */
  freeLE(index: LogIndex): void {
    if (this.count === 0 || index < this.indexes[this.start]!) return;
    let slot = this.start;
    let freed = 0;
    let freedBytes = 0;
    while (freed < this.count && this.indexes[slot]! <= index) {
      freedBytes += this.sizes[slot]!;
      freed++;
      slot++;
      if (slot >= this.countMax) slot = 0;
    }
    this.count -= freed;
    this.bytes -= freedBytes;
    this.start = this.count === 0 ? 0 : slot;
  }

  full(): boolean {
    return this.count === this.countMax || (this.bytesMax !== 0 && this.bytes >= this.bytesMax);
  }

  size(): number {
    return this.count;
  }

  sizeBytes(): number {
    return this.bytes;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}
