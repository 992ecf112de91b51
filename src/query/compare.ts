// The one total order over index values, shared by index range planning, post-filters and
// in-memory sorting so that a query gives the same answer whichever path serves it:
// null < false < true < numbers (numeric) < strings (UTF-16 code units, JS `<`).
// Record values that are not index values (absent, objects, arrays) match no comparison.

import type { Bound, IndexValue, Operator } from './types.js';

function typeRank(value: IndexValue): number {
  if (value === null) return 0;
  switch (typeof value) {
    case 'boolean':
      return 1;
    case 'number':
      return 2;
    default:
      return 3;
  }
}

export function compareIndexValues(left: IndexValue, right: IndexValue): number {
  const rankDifference = typeRank(left) - typeRank(right);
  if (rankDifference !== 0) return rankDifference;
  if (left === right || left === null || right === null) return 0;
  return left < right ? -1 : left > right ? 1 : 0;
}

export function asIndexValue(value: unknown): IndexValue | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isNaN(value) ? undefined : value;
  return undefined;
}

/** Sort order for arbitrary record values: absent first, then index values in their total order,
 *  then anything structured (objects, arrays), which compare equal to each other. */
export function compareRecordValues(left: unknown, right: unknown): number {
  return sortBucket(left) - sortBucket(right) || compareIndexValues(asIndexValue(left) ?? null, asIndexValue(right) ?? null);
}

function sortBucket(value: unknown): number {
  if (value === undefined) return 0;
  return asIndexValue(value) === undefined ? 2 : 1;
}

/** Where a value type's span of the total order starts and ends, so a one-sided comparison stays
 *  inside its type: `price=lt=10` must not return nulls and booleans just because they order first. */
export function typeSpan(value: IndexValue): { lower: Bound; upper: Bound | undefined } {
  switch (typeRank(value)) {
    case 0:
      return { lower: { value: null, inclusive: true }, upper: { value: null, inclusive: true } };
    case 1:
      return { lower: { value: false, inclusive: true }, upper: { value: true, inclusive: true } };
    case 2:
      return { lower: { value: true, inclusive: false }, upper: { value: '', inclusive: false } };
    default:
      return { lower: { value: '', inclusive: true }, upper: undefined };
  }
}

/** The first string that does not start with `prefix` in code-unit order, approximated as
 *  prefix + U+FFFF: strings that continue with U+FFFF itself are missed by the index range. */
export function prefixUpperBound(prefix: string): Bound {
  return { value: `${prefix}\uffff`, inclusive: false };
}

/** The index range equivalent to one condition, or undefined if the operator cannot use an index. */
export function conditionRange(op: Operator, value: IndexValue): { lower: Bound | undefined; upper: Bound | undefined } | undefined {
  const span = typeSpan(value);
  switch (op) {
    case 'eq':
      return { lower: { value, inclusive: true }, upper: { value, inclusive: true } };
    case 'gt':
    case 'ge':
      return { lower: { value, inclusive: op === 'ge' }, upper: span.upper };
    case 'lt':
    case 'le':
      return { lower: span.lower, upper: { value, inclusive: op === 'le' } };
    case 'sw':
      return typeof value === 'string' ? { lower: { value, inclusive: true }, upper: prefixUpperBound(value) } : undefined;
    case 'ne':
    case 'ew':
    case 'ct':
      return undefined;
  }
}

function isAboveLower(value: IndexValue, lower: Bound | undefined): boolean {
  if (lower === undefined) return true;
  const order = compareIndexValues(value, lower.value);
  return order > 0 || (order === 0 && lower.inclusive);
}

function isBelowUpper(value: IndexValue, upper: Bound | undefined): boolean {
  if (upper === undefined) return true;
  const order = compareIndexValues(value, upper.value);
  return order < 0 || (order === 0 && upper.inclusive);
}

export function isInRange(value: IndexValue, lower: Bound | undefined, upper: Bound | undefined): boolean {
  return isAboveLower(value, lower) && isBelowUpper(value, upper);
}

/** Whether a record's attribute value satisfies one condition; must agree with `conditionRange`. */
export function matchesCondition(recordValue: unknown, op: Operator, value: IndexValue): boolean {
  const actual = asIndexValue(recordValue);
  if (actual === undefined) return op === 'ne';
  switch (op) {
    case 'eq':
      return compareIndexValues(actual, value) === 0;
    case 'ne':
      return compareIndexValues(actual, value) !== 0;
    case 'sw':
      return typeof actual === 'string' && typeof value === 'string' && actual.startsWith(value);
    case 'ew':
      return typeof actual === 'string' && typeof value === 'string' && actual.endsWith(value);
    case 'ct':
      return typeof actual === 'string' && typeof value === 'string' && actual.includes(value);
    default: {
      const range = conditionRange(op, value);
      return range !== undefined && isInRange(actual, range.lower, range.upper);
    }
  }
}

/** The tighter of two lower bounds (the larger one; exclusive wins a tie). */
export function maxLower(left: Bound | undefined, right: Bound | undefined): Bound | undefined {
  if (left === undefined) return right;
  if (right === undefined) return left;
  const order = compareIndexValues(left.value, right.value);
  if (order !== 0) return order > 0 ? left : right;
  return left.inclusive ? right : left;
}

/** The tighter of two upper bounds (the smaller one; exclusive wins a tie). */
export function minUpper(left: Bound | undefined, right: Bound | undefined): Bound | undefined {
  if (left === undefined) return right;
  if (right === undefined) return left;
  const order = compareIndexValues(left.value, right.value);
  if (order !== 0) return order < 0 ? left : right;
  return left.inclusive ? right : left;
}

/** Whether no value can lie between the bounds. */
export function isEmptyRange(lower: Bound | undefined, upper: Bound | undefined): boolean {
  if (lower === undefined || upper === undefined) return false;
  const order = compareIndexValues(lower.value, upper.value);
  return order > 0 || (order === 0 && !(lower.inclusive && upper.inclusive));
}
