// What applying an entry tells the rest of the node: one event per record written, and one
// `version` event when an Activate entry switches the app's code. `apply` (src/state/) produces
// them, storage keeps a retained window of them for `since` replays, and the real-time layer fans
// them out. Fields may be added; renaming or removing one changes the wire format of
// subscriptions (src/realtime/messages.ts).

import type { RecordId, StoredRecord } from './app-entries.js';
import type { AppVersion, LogIndex } from './ids.js';

export type ChangeType = ChangeEvent['type'];

interface ChangeEventBase {
  /** Log index of the entry that produced the event. Several events may share one index (a write set
   *  touching several records); they are then contiguous and delivered together. */
  readonly index: LogIndex;
  /** The app version that produced the change (for `version` events: the version now active). */
  readonly version: AppVersion;
}

interface RecordEventBase extends ChangeEventBase {
  /** REST export name of the table. */
  readonly table: string;
  readonly id: RecordId;
}

/** A record was replaced or created; `value` is the record as stored. */
export interface PutEvent extends RecordEventBase {
  readonly type: 'put';
  readonly value: StoredRecord;
}

/** A record was merged into; `value` is the record after the merge. */
export interface PatchEvent extends RecordEventBase {
  readonly type: 'patch';
  readonly value: StoredRecord;
}

export interface DeleteEvent extends RecordEventBase {
  readonly type: 'delete';
  readonly value?: undefined;
}

/** The app's active code version changed (an Activate entry); concerns every table. */
export interface VersionEvent extends ChangeEventBase {
  readonly type: 'version';
  readonly table?: undefined;
  readonly id?: undefined;
  /** The version now active (the same number as `version`). */
  readonly value: AppVersion;
}

export type ChangeEvent = PutEvent | PatchEvent | DeleteEvent | VersionEvent;
