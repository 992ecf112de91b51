// The entries of an app's log. Every state change of an app is one of these, and `apply`
// (src/state/) is the only code that turns them into table writes. The app's Raft log carries
// exactly these values. Declared in the model because every layer from storage (which keeps the
// log) up to the cluster (which forwards proposals) names them.

import type { AppVersion, LogIndex } from './ids.js';
/** A record's primary key value. */
export type RecordId = string | number;
export type StoredRecord = Record<string, unknown>;

/** "When I ran, record (table, id) was at `expectedIndex`" (0: it did not exist). */
export interface ReadDependency {
  readonly table: string;
  readonly id: RecordId;
  readonly expectedIndex: LogIndex;
}

export type WriteOp =
  /** Replace (or create) the whole record. */
  | { readonly op: 'put'; readonly table: string; readonly id: RecordId; readonly value: StoredRecord }
  /** Merge: `value` holds only the attributes to change (null removes an optional attribute). */
  | { readonly op: 'patch'; readonly table: string; readonly id: RecordId; readonly value: StoredRecord }
  | { readonly op: 'delete'; readonly table: string; readonly id: RecordId };

export interface WriteEntry {
  readonly kind: 'write';
  /** The app version whose code produced this write set. */
  readonly version: AppVersion;
  readonly reads: readonly ReadDependency[];
  readonly writes: readonly WriteOp[];
  /** Proposer's wall clock (ms since epoch); replicas use it for @createdTime/@updatedTime. */
  readonly ts: number;
  /** Who asked for the write (the authenticated identity), recorded in the audit trail of
   *  tables declared @table(audit: true). Absent: an open node, or the node's own work. */
  readonly actor?: string;
  /** The request's Idempotency-Key and the answer it gets: apply records both, and a later
   *  entry with the same key applies nothing and is answered with this one's outcome. */
  readonly idempotency?: IdempotencyClaim;
}

/** What a write entry says about its Idempotency-Key (see src/state/idempotency.ts). */
export interface IdempotencyClaim {
  /** The client's key, scoped by the caller ("<actor>\n<key>"): one caller cannot replay, or
   *  block, another's. */
  readonly key: string;
  /** sha256 of what the request asked (method, path, body, response format): the same key with
   *  another request is refused, never answered with the first one's outcome. */
  readonly fingerprint: string;
  /** Until when (entry clock, ms since epoch) the key is remembered. */
  readonly untilMs: number;
  /** The answer the request gets if this entry applies. */
  readonly response: RecordedResponse;
}

/** An HTTP answer as a write request produced it, before its entry was proposed. */
export interface RecordedResponse {
  readonly status: number;
  readonly version: AppVersion;
  readonly payload?: Uint8Array;
  readonly mediaType?: string;
  readonly location?: string;
}

/** A remembered key: the entry that applied with it, and its answer. */
export interface IdempotencyRecord {
  /** Log index of the entry that applied with this key (its writes' version / ETag). */
  readonly index: LogIndex;
  readonly fingerprint: string;
  readonly untilMs: number;
  readonly response: RecordedResponse;
}

/** The files of an app version and their content hash. */
export interface Bundle {
  readonly hash: string;
  /** File name -> contents, e.g. "schema.graphql", "config.yaml", "resources.ts". */
  readonly files: Readonly<Record<string, string>>;
}

export interface StageEntry {
  readonly kind: 'stage';
  readonly version: AppVersion;
  readonly bundle: Bundle;
  /** The deploy accepts a breaking schema change: replicas prepare it rather than refuse it.
   *  Absent in entries written before the two-phase switch (false). */
  readonly allowBreaking?: boolean;
  /** A rollback: replicas do not run the app's checks. The version passed them when it was
   *  first deployed, and they may fail on the very data that made the rollback necessary. */
  readonly skipChecks?: boolean;
}

export interface ActivateEntry {
  readonly kind: 'activate';
  readonly version: AppVersion;
  /** Compare-and-set: the activation epoch the proposer saw. A stale or concurrent deploy fails. */
  readonly epoch: number;
}

export interface AbortEntry {
  readonly kind: 'abort';
  readonly version: AppVersion;
}

export type LogEntry = WriteEntry | StageEntry | ActivateEntry | AbortEntry;

export type ApplyRejection =
  /** A read dependency changed since the code ran: rerun it. */
  | { readonly ok: false; readonly reason: 'conflict'; readonly table: string; readonly id: RecordId }
  /** The write set was produced by a version that is not (or no longer) active: rerun it. */
  | { readonly ok: false; readonly reason: 'version'; readonly activeVersion: AppVersion }
  /** The entry itself is invalid at this point of the log (stale epoch, unknown version...). */
  | { readonly ok: false; readonly reason: 'invalid'; readonly detail: string }
  /** The entry's Idempotency-Key is remembered for another request: nothing applied. */
  | { readonly ok: false; readonly reason: 'key-reused'; readonly detail: string };

export type ApplyResult =
  /** `replayOf`: the entry's Idempotency-Key was already applied; this entry applied nothing and
   *  its request gets the remembered answer. */
  | { readonly ok: true; readonly replayOf?: IdempotencyRecord }
  | ApplyRejection;
