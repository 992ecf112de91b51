// The query executor's view of one LMDB table: typed coercion from the schema, index ranges from
// the [value, id] index databases, and records by id. Index keys are ordered by lmdb's
// ordered-binary encoding (boolean < number < string), which matches the executor's comparison.
import type { RecordId, StoredRecord } from '../model/app-entries.js';
import { Problem } from '../model/problem.js';
import { compareIndexValues } from '../query/compare.js';
import type { Bound, IndexValue, TableReader } from '../query/types.js';
import type { ScalarName, TableDef, TypeRef } from '../schema/index.js';
import type { IndexKey } from '../storage/app-store.js';
import type { AppRuntime } from './runtime.js';
import { isExpired } from './transaction.js';

export interface VisitedRecord {
  readonly id: RecordId;
  readonly index: number;
}

export class LmdbTableReader implements TableReader {
  readonly primaryKey: string;
  private readonly visited: VisitedRecord[] = [];

  constructor(
    private readonly runtime: AppRuntime,
    private readonly table: TableDef,
    private readonly nowMs: number,
  ) {
    this.primaryKey = table.primaryKey;
  }

  hasAttribute(attribute: string): boolean {
    return this.table.attributesByName.has(attribute);
  }

  coerce(attribute: string, raw: string): IndexValue {
    const definition = this.table.attributesByName.get(attribute);
    if (definition === undefined) {
      throw new Problem('invalid', { detail: `${this.table.exportName} has no attribute '${attribute}'`, errors: [{ field: attribute, message: 'unknown attribute' }] });
    }
    if (raw === 'null') return null;
    return coerceScalar(attribute, scalarOf(definition.type), raw);
  }

  isIndexed(attribute: string): boolean {
    return attribute === this.table.primaryKey || this.table.indexed.includes(attribute);
  }

  *idsInRange(attribute: string, lower: Bound | undefined, upper: Bound | undefined, descending: boolean): Iterable<string | number> {
    if (attribute === this.table.primaryKey) {
      yield* this.primaryKeyRange(lower, upper, descending);
      return;
    }
    const index = this.runtime.store.index(this.table.name, attribute);
    const below = (value: IndexValue): boolean => lower !== undefined && (lower.inclusive ? compareIndexValues(value, lower.value) < 0 : compareIndexValues(value, lower.value) <= 0);
    const above = (value: IndexValue): boolean => upper !== undefined && (upper.inclusive ? compareIndexValues(value, upper.value) > 0 : compareIndexValues(value, upper.value) >= 0);
    if (!descending) {
      const start = lower === undefined || lower.value === null ? undefined : [lower.value];
      for (const key of index.getKeys(start === undefined ? {} : { start })) {
        const [value, id] = key as IndexKey;
        if (below(value)) continue;
        if (above(value)) return;
        yield id;
      }
      return;
    }
    // Descending: the ids equal to an inclusive upper bound sort after the key [upper], so they
    // are collected first; the rest is a reverse scan from [upper] down.
    if (upper !== undefined && upper.value !== null) {
      if (upper.inclusive && !below(upper.value)) {
        const equal: RecordId[] = [];
        for (const key of index.getKeys({ start: [upper.value] })) {
          const [value, id] = key as IndexKey;
          if (compareIndexValues(value, upper.value) !== 0) break;
          equal.push(id);
        }
        for (let i = equal.length - 1; i >= 0; i--) yield equal[i] as RecordId;
      }
    }
    const start = upper === undefined || upper.value === null ? undefined : [upper.value];
    for (const key of index.getKeys(start === undefined ? { reverse: true } : { start, reverse: true })) {
      const [value, id] = key as IndexKey;
      if (above(value)) continue;
      if (below(value)) return;
      yield id;
    }
  }

  private *primaryKeyRange(lower: Bound | undefined, upper: Bound | undefined, descending: boolean): Iterable<string | number> {
    const db = this.runtime.store.table(this.table.name);
    for (const key of db.getKeys({ reverse: descending })) {
      const id = key as RecordId;
      if (lower !== undefined && (lower.inclusive ? compareIndexValues(id, lower.value) < 0 : compareIndexValues(id, lower.value) <= 0)) {
        if (descending) return;
        continue;
      }
      if (upper !== undefined && (upper.inclusive ? compareIndexValues(id, upper.value) > 0 : compareIndexValues(id, upper.value) >= 0)) {
        if (descending) continue;
        return;
      }
      yield id;
    }
  }

  get(id: string | number): Record<string, unknown> | undefined {
    const envelope = this.runtime.store.table(this.table.name).get(id);
    if (envelope === undefined) return undefined;
    this.visited.push({ id, index: envelope.i });
    return isExpired(this.table, envelope, this.nowMs) ? undefined : envelope.v;
  }

  *scan(): Iterable<Record<string, unknown>> {
    for (const { key, value } of this.runtime.store.table(this.table.name).getRange({})) {
      this.visited.push({ id: key as RecordId, index: value.i });
      if (!isExpired(this.table, value, this.nowMs)) yield value.v as StoredRecord;
    }
  }

  /** Every record this reader returned or inspected, with the version it saw. */
  visitedIds(): readonly VisitedRecord[] {
    return this.visited;
  }
}

function scalarOf(type: TypeRef): ScalarName {
  if (type.kind === 'scalar') return type.name;
  if (type.kind === 'list') return scalarOf(type.of);
  return 'Any';
}

function coerceScalar(attribute: string, scalar: ScalarName, raw: string): IndexValue {
  const fail = (expected: string): never => {
    throw new Problem('invalid', { detail: `'${raw}' is not a valid ${expected} for '${attribute}'`, errors: [{ field: attribute, message: `must be ${expected}` }] });
  };
  switch (scalar) {
    case 'Int':
    case 'Long': {
      const n = Number(raw);
      return raw.trim() !== '' && Number.isSafeInteger(n) ? n : fail(scalar);
    }
    case 'Float': {
      const n = Number(raw);
      return raw.trim() !== '' && Number.isFinite(n) ? n : fail('Float');
    }
    case 'Boolean':
      return raw === 'true' ? true : raw === 'false' ? false : fail('Boolean (true or false)');
    case 'Date': {
      const n = Number(raw);
      if (raw.trim() !== '' && Number.isSafeInteger(n)) return n;
      return Number.isNaN(Date.parse(raw)) ? fail('Date (ISO-8601 or epoch ms)') : raw;
    }
    case 'Any': {
      const n = Number(raw);
      if (raw === 'true' || raw === 'false') return raw === 'true';
      return raw.trim() !== '' && Number.isFinite(n) ? n : raw;
    }
    case 'ID':
    case 'String':
      return raw;
  }
}
