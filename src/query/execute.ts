// Runs a parsed query against one table at one consistent point: types the values, plans the
// candidate scan, filters, orders, pages and projects. Work is lazy where the order allows it, so
// `limit(10)` over an index-ordered plan reads about ten records.

import assert from 'node:assert/strict';
import { compareRecordValues } from './compare.js';
import { compileFilter, matchesFilter, type CompiledFilter } from './compiled-filter.js';
import { planContains, planFilter, type Plan } from './plan.js';
import { queryRejected } from './syntax-error.js';
import type { ExecuteOptions, Query, SortKey, TableReader } from './types.js';

type Row = Record<string, unknown>;

/** In-memory top-k sorting trims its buffer once it holds this many records beyond the k kept,
 *  so a small limit does not re-sort after every record. */
const sortTrimSlackRecords = 64;

function* planRecords(plan: Plan, reader: TableReader, descending: boolean): Generator<Row> {
  switch (plan.kind) {
    case 'empty':
      return;
    case 'get': {
      const record = reader.get(plan.id);
      if (record !== undefined) yield record;
      return;
    }
    case 'scan':
      if (descending) yield* planRecords({ kind: 'range', attribute: reader.primaryKey, lower: undefined, upper: undefined }, reader, true);
      else yield* reader.scan();
      return;
    case 'range':
      for (const id of reader.idsInRange(plan.attribute, plan.lower, plan.upper, descending)) {
        // A reader may hide records (e.g. expired ones) that its index still lists.
        const record = reader.get(id);
        if (record !== undefined) yield record;
      }
      return;
    case 'union':
      for (const [index, branch] of plan.plans.entries()) {
        const earlier = plan.plans.slice(0, index);
        for (const record of planRecords(branch, reader, false)) {
          if (!earlier.some((previous) => planContains(previous, record, reader.primaryKey))) yield record;
        }
      }
      return;
  }
}

/** Whether the plan already yields records in the requested order (and in which direction). */
function orderFromPlan(plan: Plan, sort: readonly SortKey[], primaryKey: string): { descending: boolean } | undefined {
  const [first] = sort;
  if (first === undefined || plan.kind === 'empty' || plan.kind === 'get') return { descending: false };
  // Keys after a unique key never break ties, so `sort(id,name)` is ordered like `sort(id)`.
  const onlyKeyMatters = sort.length === 1 || first.attribute === primaryKey;
  if (!onlyKeyMatters) return undefined;
  if (plan.kind === 'scan' && first.attribute === primaryKey) return { descending: first.descending };
  if (plan.kind === 'range' && first.attribute === plan.attribute) return { descending: first.descending };
  return undefined;
}

function compareBySort(sort: readonly SortKey[]): (left: Row, right: Row) => number {
  return (left, right) => {
    for (const key of sort) {
      const order = compareRecordValues(left[key.attribute], right[key.attribute]);
      if (order !== 0) return key.descending ? -order : order;
    }
    return 0;
  };
}

function tooManyResults(maxResults: number): Error {
  return queryRejected(`the query matches more than ${maxResults} records; add limit() or narrow the filter`);
}

function* matching(records: Iterable<Row>, filter: CompiledFilter | undefined): Generator<Row> {
  for (const record of records) {
    if (filter === undefined || matchesFilter(filter, record)) yield record;
  }
}

/** Pages through records already in order, stopping as soon as the page is full. */
function takePage(records: Iterable<Row>, offset: number, limit: number | undefined, maxResults: number): Row[] {
  const page: Row[] = [];
  if (limit === 0) return page;
  let skipped = 0;
  for (const record of records) {
    if (skipped < offset) {
      skipped++;
      continue;
    }
    if (page.length === maxResults) throw tooManyResults(maxResults);
    page.push(record);
    if (page.length === limit) break;
  }
  return page;
}

/** Sorts in memory. With a limit, keeps only the best offset+limit records seen so far (a buffer
 *  trimmed by a stable sort whenever it doubles), so memory stays within about 2 x `maxResults`. */
function sortedPage(records: Iterable<Row>, sort: readonly SortKey[], offset: number, limit: number | undefined, maxResults: number): Row[] {
  const compare = compareBySort(sort);
  const keep = limit === undefined ? undefined : offset + limit;
  if (keep === 0) return [];
  const buffer: Row[] = [];
  if (keep !== undefined && keep <= maxResults) {
    for (const record of records) {
      buffer.push(record);
      if (buffer.length >= keep + Math.max(keep, sortTrimSlackRecords)) {
        buffer.sort(compare);
        buffer.length = keep;
      }
    }
  } else {
    for (const record of records) {
      if (buffer.length === maxResults) {
        throw queryRejected(`sorting needs more than ${maxResults} records in memory; add limit(), sort by the filtered indexed attribute, or narrow the filter`);
      }
      buffer.push(record);
    }
  }
  buffer.sort(compare);
  return buffer.slice(offset, keep);
}

function checkAttributes(attributes: readonly string[], where: string, reader: TableReader): void {
  for (const attribute of attributes) {
    if (!reader.hasAttribute(attribute)) throw queryRejected(`unknown attribute '${attribute}' in ${where}`);
  }
}

function project(records: readonly Row[], select: readonly string[] | undefined): Record<string, unknown>[] {
  if (select === undefined) return [...records];
  return records.map((record) => {
    const projected: Record<string, unknown> = {};
    for (const attribute of select) {
      if (Object.hasOwn(record, attribute)) projected[attribute] = record[attribute];
    }
    return projected;
  });
}

function choosePlan(filter: CompiledFilter | undefined, reader: TableReader, allowScan: boolean): Plan {
  if (filter === undefined) return { kind: 'scan' };
  const plan = planFilter(filter, reader);
  if (plan.kind !== 'undrivable') return plan;
  if (allowScan) return { kind: 'scan' };
  throw plan.reason === 'not-indexed'
    ? queryRejected(`attribute '${plan.attribute}' is not indexed; add @indexed or allow scans in config`)
    : queryRejected(`operator '${plan.op}' on '${plan.attribute}' cannot use an index; combine it with an indexed condition or allow scans in config`);
}

export function executeQuery(query: Query, reader: TableReader, options: ExecuteOptions): Record<string, unknown>[] {
  assert(Number.isSafeInteger(options.maxResults) && options.maxResults > 0, 'maxResults is a positive integer');
  assert(Number.isSafeInteger(query.offset) && query.offset >= 0, 'offset is a non-negative integer');
  checkAttributes(query.sort.map((key) => key.attribute), 'sort()', reader);
  if (query.select !== undefined) checkAttributes(query.select, 'select()', reader);
  const filter = query.filter === undefined ? undefined : compileFilter(query.filter, reader);
  const plan = choosePlan(filter, reader, options.allowScan);

  const planOrder = orderFromPlan(plan, query.sort, reader.primaryKey);
  const candidates = matching(planRecords(plan, reader, planOrder?.descending ?? false), filter);
  const page =
    planOrder !== undefined
      ? takePage(candidates, query.offset, query.limit, options.maxResults)
      : sortedPage(candidates, query.sort, query.offset, query.limit, options.maxResults);
  return project(page, query.select);
}
