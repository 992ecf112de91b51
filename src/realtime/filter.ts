// Which events a subscription sees. Shared by the hub (live fan-out) and by ChangeSource
// implementations (replay), so both sides agree on one definition.

import type { ChangeEvent } from '../model/change-event.js';
import type { SubscriptionFilter } from './types.js';

/** Ids arrive as strings from URLs and as numbers from the state machine (Int primary keys);
 *  comparing their string forms makes `/shop/Product/42` match the record with id 42. */
export function recordKey(id: string | number): string {
  return String(id);
}

export function matchesFilter(event: ChangeEvent, filter: SubscriptionFilter): boolean {
  // Version events concern the whole app: every subscriber must learn the code changed under it.
  if (event.type === 'version') return true;
  if (filter.table === undefined) return true;
  if (event.table !== filter.table) return false;
  if (filter.id === undefined) return true;
  return event.id !== undefined && recordKey(event.id) === recordKey(filter.id);
}

/** An id without a table is meaningless (ids are per table); reject it where filters are built. */
export function assertValidFilter(filter: SubscriptionFilter): void {
  if (filter.id !== undefined && filter.table === undefined) {
    throw new Error('SubscriptionFilter: id given without table');
  }
}
