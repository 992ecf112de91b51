// LMDB keys are at most 1978 bytes. A record's key is its id; an index key is [value, id]. These
// bounds keep every key the state machine writes well inside that, and are checked twice: by the
// request layer (a clear 400) and by apply itself (so no entry can make a replica throw).
import type { RecordId, StoredRecord } from '../model/app-entries.js';
import type { TableDef } from '../schema/index.js';

export const recordIdBytesMax = 512;

/** A UTF-16 code unit of a surrogate pair without its other half: not a Unicode string, so it
 *  cannot be written as UTF-8 (a URL, a JSON answer) and read back as the same id. */
const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export function hasLoneSurrogate(text: string): boolean {
  return loneSurrogate.test(text);
}

/**
 * Why `id` cannot be a primary key of `table`, or undefined if it can. Every accepted id must be
 * addressable by its URL: String and ID keys are non-empty, well-formed strings within the key
 * limit (a number in a String key would become a different key from the URL's string); Int and
 * Long keys are safe integers.
 */
export function recordIdProblem(table: TableDef, id: unknown): string | undefined {
  if (table.primaryKeyType === 'Int' || table.primaryKeyType === 'Long') {
    return typeof id === 'number' && Number.isSafeInteger(id) ? undefined : `must be an integer (${table.primaryKeyType} key)`;
  }
  if (typeof id !== 'string') return `must be a string (${table.primaryKeyType} key)`;
  if (id === '') return 'must not be empty';
  if (hasLoneSurrogate(id)) return 'must be a well-formed Unicode string (it has a lone surrogate)';
  if (Buffer.byteLength(id) > recordIdBytesMax) return `is longer than ${recordIdBytesMax} bytes`;
  return undefined;
}
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
