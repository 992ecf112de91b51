// Subscribers of one app, indexed so that publishing an event touches only those that want it:
// a record event reaches app-wide subscribers, its table's subscribers and its record's
// subscribers, without scanning the others.

import type { ChangeEvent } from '../model/change-event.js';
import { recordKey } from './filter.js';
import type { SubscriptionFilter } from './types.js';

export class SubscriberIndex<T> {
  private readonly appWide = new Set<T>();
  private readonly byTable = new Map<string, Set<T>>();
  private readonly byRecord = new Map<string, Map<string, Set<T>>>();
  private count = 0;

  size(): number {
    return this.count;
  }

  add(filter: SubscriptionFilter, item: T): void {
    const bucket = this.bucketFor(filter, true);
    if (bucket.has(item)) throw new Error('SubscriberIndex: subscriber added twice');
    bucket.add(item);
    this.count += 1;
  }

  /** Returns false when the item was not (or no longer) present, so callers can remove twice. */
  remove(filter: SubscriptionFilter, item: T): boolean {
    const bucket = this.bucketFor(filter, false);
    if (!bucket.delete(item)) return false;
    this.count -= 1;
    // Empty buckets are dropped so a churn of one-off record subscriptions does not leak maps.
    if (bucket.size === 0 && filter.table !== undefined) {
      if (filter.id === undefined) {
        this.byTable.delete(filter.table);
      } else {
        const records = this.byRecord.get(filter.table);
        records?.delete(recordKey(filter.id));
        if (records !== undefined && records.size === 0) this.byRecord.delete(filter.table);
      }
    }
    return true;
  }

  /** Calls `visit` once for every subscriber whose filter matches the event. `visit` may remove
   *  the subscriber it is given (deleting the current element while iterating a Set is safe). */
  forEachRecipient(event: ChangeEvent, visit: (item: T) => void): void {
    for (const item of this.appWide) visit(item);
    if (event.type === 'version') {
      for (const bucket of this.byTable.values()) for (const item of bucket) visit(item);
      for (const records of this.byRecord.values()) {
        for (const bucket of records.values()) for (const item of bucket) visit(item);
      }
      return;
    }
    if (event.table === undefined) return;
    const tableBucket = this.byTable.get(event.table);
    if (tableBucket !== undefined) for (const item of tableBucket) visit(item);
    if (event.id === undefined) return;
    const recordBucket = this.byRecord.get(event.table)?.get(recordKey(event.id));
    if (recordBucket !== undefined) for (const item of recordBucket) visit(item);
  }

  all(): T[] {
    const items: T[] = [...this.appWide];
    for (const bucket of this.byTable.values()) items.push(...bucket);
    for (const records of this.byRecord.values()) for (const bucket of records.values()) items.push(...bucket);
    return items;
  }

  private bucketFor(filter: SubscriptionFilter, create: boolean): Set<T> {
    if (filter.table === undefined) return this.appWide;
    if (filter.id === undefined) return getOrCreate(this.byTable, filter.table, create, () => new Set<T>());
    const records = getOrCreate(this.byRecord, filter.table, create, () => new Map<string, Set<T>>());
    return getOrCreate(records, recordKey(filter.id), create, () => new Set<T>());
  }
}

function getOrCreate<K, V>(map: Map<K, V>, key: K, create: boolean, make: () => V): V {
  const existing = map.get(key);
  if (existing !== undefined) return existing;
  const made = make();
  // A lookup for removal must not leave an empty bucket behind.
  if (create) map.set(key, made);
  return made;
}
