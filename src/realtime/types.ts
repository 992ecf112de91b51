// The contract between the state machine (which produces change events and keeps the retained
// log window) and the real-time layer (which fans them out to WebSocket and SSE subscribers).
// Fields may be added; renaming or removing one changes src/state/, src/http/ and src/realtime/.

export type ChangeType = 'put' | 'patch' | 'delete' | 'version';

export interface ChangeEvent {
  readonly type: ChangeType;
  /** REST export name of the table; absent on `version` events. */
  readonly table?: string;
  /** Primary key; absent on `version` events. */
  readonly id?: string | number;
  /** The record (put), the merged patch (patch), nothing (delete), or the new app version number (version). */
  readonly value?: unknown;
  /** Log index of the entry that produced the event. Several events may share one index (a write set
   *  touching several records); they are then contiguous and delivered together. */
  readonly index: number;
  /** The app version that produced the change (for `version` events: the version now active). */
  readonly version: number;
}

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
