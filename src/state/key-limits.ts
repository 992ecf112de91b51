// LMDB keys are at most 1978 bytes. A record's key is its id; an index key is [value, id]. These
// bounds keep every key the state machine writes well inside that, and are checked twice: by the
// request layer (a clear 400) and by apply itself (so no entry can make a replica throw).
import type { RecordId, StoredRecord } from '../model/app-entries.js';
import type { TableDef } from '../schema/index.js';

export const recordIdBytesMax = 512;
export const indexedValueBytesMax = 1024;

/** The attribute and reason of the first key that would be too large, or undefined. */
export function oversizedKey(table: TableDef, id: RecordId, value: StoredRecord | undefined): { field: string; message: string } | undefined {
  if (typeof id === 'string' && Buffer.byteLength(id) > recordIdBytesMax) {
    return { field: table.primaryKey, message: `is longer than ${recordIdBytesMax} bytes` };
  }
  if (value === undefined) return undefined;
  for (const attribute of table.indexed) {
    const raw = value[attribute];
    const values = Array.isArray(raw) ? raw : [raw];
    for (const element of values) {
      if (typeof element === 'string' && Buffer.byteLength(element) > indexedValueBytesMax) {
        return { field: attribute, message: `is indexed, and indexed values are at most ${indexedValueBytesMax} bytes` };
      }
    }
  }
  return undefined;
}
