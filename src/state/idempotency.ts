// Idempotency-Keys in the app's state: a write entry that names a key is applied once. Apply
// remembers the key with the entry's index and the answer its request got; a later entry with
// the same key (a client's retry after a failover, or a proposal that was committed although its
// proposer answered 503) applies nothing and its request gets the remembered answer.
//
// Everything here is decided from the log alone: a key is remembered until the `untilMs` its
// first entry carried, judged against the clock of the entry that asks (`entry.ts`), and at most
// `expiredPerApply` forgotten keys are deleted per applied keyed write. So every replica keeps and
// forgets the same keys at the same index.
import type { IdempotencyClaim, IdempotencyRecord } from '../model/app-entries.js';
import type { LogIndex } from '../model/ids.js';
import type { AppStore } from '../storage/app-store.js';

/** Forgotten keys deleted per applied keyed write: bounded work per entry, and faster than keys
 *  are added (each keyed write adds one). */
const expiredPerApply = 8;

/** The record of `key` if it is still remembered at `nowMs`. */
export function rememberedKey(store: AppStore, key: string, nowMs: number): IdempotencyRecord | undefined {
  const record = store.idempotency.get(key);
  return record !== undefined && record.untilMs > nowMs ? record : undefined;
}

/** Records that the entry at `index` applied with `claim`'s key (inside apply's transaction). */
export function rememberKey(store: AppStore, index: LogIndex, claim: IdempotencyClaim): void {
  const previous = store.idempotency.get(claim.key);
  if (previous !== undefined) store.idempotencyExpiry.removeSync([previous.untilMs, claim.key]);
  store.idempotency.putSync(claim.key, { index, fingerprint: claim.fingerprint, untilMs: claim.untilMs, response: claim.response });
  store.idempotencyExpiry.putSync([claim.untilMs, claim.key], true);
}

/** Deletes up to `expiredPerApply` keys forgotten by `nowMs`, oldest first. */
export function forgetExpiredKeys(store: AppStore, nowMs: number): void {
  // Collected first: the deletes must not run under an open cursor of the same range.
  const expired = [...store.idempotencyExpiry.getKeys({ limit: expiredPerApply })].filter((key) => (key as [number, string])[0] <= nowMs);
  for (const key of expired) {
    store.idempotencyExpiry.removeSync(key);
    store.idempotency.removeSync((key as [number, string])[1]);
  }
}
