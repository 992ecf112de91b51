// What the real-time layer needs from the node that hosts an app: which events a subscription
// wants, and a source of retained change events to replay from. The events themselves
// (ChangeEvent) are declared in src/model/change-event.ts, where apply produces them.

import type { ChangeEvent } from '../model/change-event.js';

/** table = REST export name; undefined table = every table of the app; id only with table. */
export interface SubscriptionFilter {
  readonly table?: string;
  readonly id?: string | number;
}

export type ReadSinceResult =
  | { readonly events: readonly ChangeEvent[] }
  | { readonly reset: true; readonly oldestIndex: number };

export interface ChangeSource {
  /** Events with index > since, up to and including appliedIndex(), in log order, matching the filter
   *  (version events always match); or a reset when entries after `since` were already truncated.
   *  Must never return part of one index's events. */
  readSince(since: number, filter: SubscriptionFilter): ReadSinceResult;
  appliedIndex(): number;
}
