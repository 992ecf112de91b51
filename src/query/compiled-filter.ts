// A filter whose values have been typed by the table's schema, and the record-level test for it.
// Every candidate record is tested against the whole filter, whichever index produced it, so a
// plan only has to return a superset of the matches.

import { Problem } from '../model/problem.js';
import { matchesCondition } from './compare.js';
import type { Filter, IndexValue, Operator, TableReader } from './types.js';

export type CompiledFilter =
  | { readonly kind: 'cond'; readonly attribute: string; readonly op: Operator; readonly value: IndexValue; readonly raw: string }
  | { readonly kind: 'and' | 'or'; readonly items: readonly CompiledFilter[] };

export function compileFilter(filter: Filter, reader: TableReader): CompiledFilter {
  if (filter.kind !== 'cond') return { kind: filter.kind, items: filter.items.map((item) => compileFilter(item, reader)) };
  const value = reader.coerce(filter.attribute, filter.value);
  if ((filter.op === 'sw' || filter.op === 'ew' || filter.op === 'ct') && typeof value !== 'string') {
    const message = `operator '${filter.op}' needs a string attribute; '${filter.attribute}' is not one`;
    throw new Problem('invalid', { detail: message, errors: [{ field: filter.attribute, message }], type: 'invalid-query' });
  }
  return { kind: 'cond', attribute: filter.attribute, op: filter.op, value, raw: filter.value };
}

export function matchesFilter(filter: CompiledFilter, record: Readonly<Record<string, unknown>>): boolean {
  switch (filter.kind) {
    case 'cond':
      return matchesCondition(record[filter.attribute], filter.op, filter.value);
    case 'and':
      return filter.items.every((item) => matchesFilter(item, record));
    case 'or':
      return filter.items.some((item) => matchesFilter(item, record));
  }
}
