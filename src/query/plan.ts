// Chooses how to find the candidates of a filter: which index range drives an AND, how OR branches
// combine, and when only a full scan would do. Plans are plain data so tests can assert the choice.

import assert from 'node:assert/strict';
import { asIndexValue, conditionRange, isEmptyRange, isInRange, maxLower, minUpper } from './compare.js';
import type { CompiledFilter } from './compiled-filter.js';
import type { Bound, Operator, TableReader } from './types.js';

export type Plan =
  | { readonly kind: 'empty' }
  /** Equality on the primary key: one direct read. */
  | { readonly kind: 'get'; readonly id: string | number }
  | { readonly kind: 'range'; readonly attribute: string; readonly lower: Bound | undefined; readonly upper: Bound | undefined }
  /** OR: each branch's candidates, in branch order, without repeats. */
  | { readonly kind: 'union'; readonly plans: readonly Plan[] }
  /** Every record in primary-key order. */
  | { readonly kind: 'scan' };

/** Why a filter cannot be driven by an index: the first condition that would have to drive it. */
export interface Undrivable {
  readonly kind: 'undrivable';
  readonly attribute: string;
  readonly reason: 'not-indexed' | 'operator';
  readonly op: Operator;
}

interface Candidate {
  readonly plan: Plan;
  /** Higher is more selective: primary-key get > equality > two-sided range > one-sided > prefix. */
  readonly score: number;
}

type CondFilter = Extract<CompiledFilter, { kind: 'cond' }>;

function undrivable(condition: CondFilter, reader: TableReader): Undrivable {
  return { kind: 'undrivable', attribute: condition.attribute, reason: reader.isIndexed(condition.attribute) ? 'operator' : 'not-indexed', op: condition.op };
}

/** Intersects every index-capable condition on one attribute (`price=gt=1&price=lt=9` is one range). */
function attributeCandidate(attribute: string, conditions: readonly CondFilter[], reader: TableReader): Candidate {
  let lower: Bound | undefined;
  let upper: Bound | undefined;
  let hasEquality = false;
  let hasLowerComparison = false;
  let hasUpperComparison = false;
  for (const condition of conditions) {
    const range = conditionRange(condition.op, condition.value);
    if (range === undefined) continue;
    lower = maxLower(lower, range.lower);
    upper = minUpper(upper, range.upper);
    hasEquality ||= condition.op === 'eq';
    hasLowerComparison ||= condition.op === 'gt' || condition.op === 'ge';
    hasUpperComparison ||= condition.op === 'lt' || condition.op === 'le';
  }
  if (isEmptyRange(lower, upper)) return { plan: { kind: 'empty' }, score: 6 };
  const score = hasEquality ? 4 : hasLowerComparison && hasUpperComparison ? 3 : hasLowerComparison || hasUpperComparison ? 2 : 1;
  const pointValue = lower !== undefined && upper !== undefined && lower.inclusive && upper.inclusive && lower.value === upper.value ? lower.value : undefined;
  if (attribute === reader.primaryKey && (typeof pointValue === 'string' || typeof pointValue === 'number')) {
    return { plan: { kind: 'get', id: pointValue }, score: 5 };
  }
  return { plan: { kind: 'range', attribute, lower, upper }, score };
}

function planAnd(items: readonly CompiledFilter[], reader: TableReader): Plan | Undrivable {
  // An empty AND matches everything, like no filter: the collection listing, always allowed.
  if (items.length === 0) return { kind: 'scan' };
  const byAttribute = new Map<string, CondFilter[]>();
  let firstUndrivable: Undrivable | undefined;
  for (const item of items) {
    if (item.kind !== 'cond') continue;
    if (reader.isIndexed(item.attribute) && conditionRange(item.op, item.value) !== undefined) {
      const list = byAttribute.get(item.attribute) ?? [];
      list.push(item);
      byAttribute.set(item.attribute, list);
    } else {
      firstUndrivable ??= undrivable(item, reader);
    }
  }
  let best: Candidate | undefined;
  // Map iteration follows first appearance, so ties go to the condition written first.
  for (const [attribute, conditions] of byAttribute) {
    const candidate = attributeCandidate(attribute, conditions, reader);
    if (best === undefined || candidate.score > best.score) best = candidate;
  }
  if (best !== undefined) return best.plan;
  // No single condition can drive: an OR item whose every branch can is the next best thing.
  for (const item of items) {
    if (item.kind === 'cond') continue;
    const plan = planFilter(item, reader);
    if (plan.kind !== 'undrivable') return plan;
    firstUndrivable ??= plan;
  }
  assert(firstUndrivable !== undefined, 'an AND with no drivable item has an item that explains why');
  return firstUndrivable;
}

function planOr(items: readonly CompiledFilter[], reader: TableReader): Plan | Undrivable {
  const plans: Plan[] = [];
  for (const item of items) {
    const plan = planFilter(item, reader);
    if (plan.kind === 'undrivable') return plan;
    if (plan.kind === 'union') plans.push(...plan.plans);
    else if (plan.kind !== 'empty') plans.push(plan);
  }
  const [only] = plans;
  if (only === undefined) return { kind: 'empty' };
  return plans.length === 1 ? only : { kind: 'union', plans };
}

export function planFilter(filter: CompiledFilter, reader: TableReader): Plan | Undrivable {
  switch (filter.kind) {
    case 'cond':
      return planAnd([filter], reader);
    case 'and':
      return planAnd(filter.items, reader);
    case 'or':
      return planOr(filter.items, reader);
  }
}

/** Whether `plan` would produce `record`; lets a union skip repeats without remembering ids. */
export function planContains(plan: Plan, record: Readonly<Record<string, unknown>>, primaryKey: string): boolean {
  switch (plan.kind) {
    case 'empty':
      return false;
    case 'scan':
      return true;
    case 'get':
      return record[primaryKey] === plan.id;
    case 'range': {
      const value = asIndexValue(record[plan.attribute]);
      return value !== undefined && isInRange(value, plan.lower, plan.upper);
    }
    case 'union':
      return plan.plans.some((branch) => planContains(branch, record, primaryKey));
  }
}
