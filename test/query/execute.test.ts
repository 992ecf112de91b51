import { describe, expect, it } from 'vitest';
import { Problem } from '../../src/model/problem.js';
import { executeQuery } from '../../src/query/execute.js';
import { parseQuery } from '../../src/query/parse.js';
import type { Bound, IndexValue, TableReader } from '../../src/query/types.js';
import { seededRandom } from '../support/seeded-random.js';

// ---- An in-memory TableReader: sorted arrays stand in for LMDB indexes. Its value order is
// written independently of src/query/compare.ts so these tests cross-check it.
// An in-memory TableReader for executor tests: sorted arrays stand in for LMDB indexes. Its value
// order is written independently of src/query/compare.ts so the tests cross-check it.


type AttributeType = 'String' | 'Int' | 'Float' | 'Boolean' | 'Any';
type Id = string | number;
type Row = Record<string, unknown>;

function rank(value: IndexValue): number {
  if (value === null) return 0;
  if (typeof value === 'boolean') return 1;
  if (typeof value === 'number') return 2;
  return 3;
}

function referenceCompare(left: IndexValue, right: IndexValue): number {
  if (rank(left) !== rank(right)) return rank(left) - rank(right);
  if (left === null || right === null || left === right) return 0;
  return left < right ? -1 : 1;
}

function isIndexValue(value: unknown): value is IndexValue {
  return value === null || typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && !Number.isNaN(value));
}

function compareIds(left: Id, right: Id): number {
  return referenceCompare(left, right);
}

function withinLower(value: IndexValue, bound: Bound | undefined): boolean {
  if (bound === undefined) return true;
  const order = referenceCompare(value, bound.value);
  return bound.inclusive ? order >= 0 : order > 0;
}

function withinUpper(value: IndexValue, bound: Bound | undefined): boolean {
  if (bound === undefined) return true;
  const order = referenceCompare(value, bound.value);
  return bound.inclusive ? order <= 0 : order < 0;
}

interface RangeCall {
  readonly attribute: string;
  readonly lower: Bound | undefined;
  readonly upper: Bound | undefined;
  readonly descending: boolean;
}

class MemoryTable implements TableReader {
  readonly rangeCalls: RangeCall[] = [];
  scanCalls = 0;
  getCalls = 0;
  /** Records handed out by scan() and get(): what "reading" costs. */
  recordsRead = 0;
  private readonly byId = new Map<Id, Row>();

  constructor(
    readonly primaryKey: string,
    private readonly schema: Readonly<Record<string, AttributeType>>,
    private readonly indexed: ReadonlySet<string>,
    records: readonly Row[],
  ) {
    for (const record of records) {
      const id = record[primaryKey];
      if (typeof id !== 'string' && typeof id !== 'number') throw new Error('test record without an id');
      this.byId.set(id, record);
    }
  }

  hasAttribute(attribute: string): boolean {
    return Object.hasOwn(this.schema, attribute);
  }

  coerce(attribute: string, raw: string): IndexValue {
    const type = this.schema[attribute];
    const reject = (message: string) => new Problem('invalid', { detail: message, errors: [{ field: attribute, message }] });
    if (type === undefined) throw reject(`unknown attribute '${attribute}'`);
    if (raw === 'null') return null;
    switch (type) {
      case 'String':
        return raw;
      case 'Int':
        if (!/^-?[0-9]+$/.test(raw)) throw reject(`'${raw}' is not an Int`);
        return Number(raw);
      case 'Float': {
        const value = Number(raw);
        if (raw.trim() === '' || !Number.isFinite(value)) throw reject(`'${raw}' is not a Float`);
        return value;
      }
      case 'Boolean':
        if (raw !== 'true' && raw !== 'false') throw reject(`'${raw}' is not a Boolean`);
        return raw === 'true';
      case 'Any':
        if (raw === 'true' || raw === 'false') return raw === 'true';
        return raw.trim() !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
    }
  }

  isIndexed(attribute: string): boolean {
    return attribute === this.primaryKey || this.indexed.has(attribute);
  }

  *idsInRange(attribute: string, lower: Bound | undefined, upper: Bound | undefined, descending: boolean): Iterable<Id> {
    if (!this.isIndexed(attribute)) throw new Error(`test reader: idsInRange on unindexed '${attribute}'`);
    this.rangeCalls.push({ attribute, lower, upper, descending });
    // The index: (value, id) for every record whose value is indexable, in value order then id.
    const entries: { value: IndexValue; id: Id }[] = [];
    for (const [id, record] of this.byId) {
      const value = record[attribute];
      if (isIndexValue(value)) entries.push({ value, id });
    }
    entries.sort((left, right) => referenceCompare(left.value, right.value) || compareIds(left.id, right.id));
    if (descending) entries.reverse();
    for (const entry of entries) {
      if (withinLower(entry.value, lower) && withinUpper(entry.value, upper)) yield entry.id;
    }
  }

  get(id: Id): Row | undefined {
    this.getCalls++;
    const record = this.byId.get(id);
    if (record !== undefined) this.recordsRead++;
    return record;
  }

  *scan(): Iterable<Row> {
    this.scanCalls++;
    const ids = [...this.byId.keys()].sort(compareIds);
    for (const id of ids) {
      this.recordsRead++;
      const record = this.byId.get(id);
      if (record !== undefined) yield record;
    }
  }
}

// ---- Fixtures

const productSchema: Record<string, AttributeType> = {
  id: 'Int', name: 'String', category: 'String', price: 'Float', inStock: 'Boolean', color: 'String', tag: 'Any', tags: 'Any',
};

const products: Row[] = [
  { id: 1, name: 'Hammer', category: 'tools', price: 12.5, inStock: true, color: 'red' },
  { id: 2, name: 'Wrench', category: 'tools', price: 8, inStock: false, color: 'blue' },
  { id: 3, name: 'Widget', category: 'gadgets', price: 3.25, inStock: true, color: 'red' },
  { id: 4, name: 'Gizmo', category: 'gadgets', price: 25, inStock: true, color: 'green' },
  { id: 5, name: 'Whatsit', category: 'gadgets', price: 8, inStock: false },
  { id: 6, name: 'Saw', category: 'tools', price: 19.99, inStock: true, color: 'blue', tags: ['sharp'] },
  { id: 7, name: 'Doohickey', category: null, price: 1, inStock: true, color: 'red' },
];

function productTable(indexed: readonly string[] = ['category', 'price', 'name']): MemoryTable {
  return new MemoryTable('id', productSchema, new Set(indexed), products);
}

const defaults = { allowScan: false, maxResults: 100 };

function run(queryString: string, table: TableReader = productTable(), options = defaults): Row[] {
  return executeQuery(parseQuery(queryString), table, options);
}

function ids(rows: readonly Row[]): unknown[] {
  return rows.map((row) => row.id);
}

function rejection(action: () => unknown): Problem {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(Problem);
    return error as Problem;
  }
  throw new Error('expected a 400, but the query ran');
}

// ---- Tests

describe('executeQuery: index choice', () => {
  it('drives an AND by equality rather than a range, and post-filters the rest', () => {
    const table = productTable();
    expect(ids(run('price=gt=5&category=tools', table))).toEqual([1, 2, 6]);
    expect(table.rangeCalls.map((call) => call.attribute)).toEqual(['category']);
    expect(table.scanCalls).toBe(0);
  });

  it('prefers a two-sided range over a one-sided one, and a range over a prefix', () => {
    const table = productTable();
    expect(ids(run('name=sw=W&price=gt=5&lt=10', table))).toEqual([2, 5]);
    expect(table.rangeCalls).toEqual([
      { attribute: 'price', lower: { value: 5, inclusive: false }, upper: { value: 10, inclusive: false }, descending: false },
    ]);
  });

  it('uses a prefix range for sw when nothing better is there', () => {
    const table = productTable();
    expect(ids(run('name=sw=W', table))).toEqual([5, 3, 2]);
    expect(table.rangeCalls).toEqual([
      { attribute: 'name', lower: { value: 'W', inclusive: true }, upper: { value: 'W\uffff', inclusive: false }, descending: false },
    ]);
  });

  it('reads one record for equality on the primary key', () => {
    const table = productTable();
    expect(run('id=3&price=lt=100', table)).toEqual([products[2]]);
    expect(table.rangeCalls).toEqual([]);
    expect(table.getCalls).toBe(1);
  });

  it('keeps a one-sided comparison inside its type (no nulls or booleans for price=lt=10)', () => {
    const table = productTable();
    run('price=lt=10', table);
    expect(table.rangeCalls[0]?.lower).toEqual({ value: true, inclusive: false });
    run('name=gt=V', table);
    expect(table.rangeCalls[1]).toMatchObject({ lower: { value: 'V', inclusive: false }, upper: undefined });
  });

  it('answers a contradictory range without touching an index', () => {
    const table = productTable();
    expect(run('price=gt=20&price=lt=10', table)).toEqual([]);
    expect(run('category=tools&category=gadgets', table)).toEqual([]);
    expect(table.rangeCalls).toEqual([]);
    expect(table.scanCalls).toBe(0);
  });

  it('accepts non-indexed post-filters next to an indexed driver', () => {
    expect(ids(run('category=tools&color=blue'))).toEqual([2, 6]);
    expect(ids(run('color=red&price=le=3.25'))).toEqual([7, 3]);
  });
});

describe('executeQuery: scans', () => {
  it('refuses a filter no index can drive, naming the attribute', () => {
    const problem = rejection(() => run('color=red'));
    expect(problem.kind).toBe('invalid');
    expect(problem.detail).toBe("attribute 'color' is not indexed; add @indexed or allow scans in config");
    expect(rejection(() => run('color=red|category=tools')).detail).toContain("'color' is not indexed");
    expect(rejection(() => run('name=ne=Saw')).detail).toContain("operator 'ne' on 'name' cannot use an index");
    expect(rejection(() => run('name=ct=o')).detail).toContain("operator 'ct' on 'name' cannot use an index");
    expect(rejection(() => run('name=ew=w')).detail).toContain("operator 'ew' on 'name' cannot use an index");
    expect(rejection(() => run('price=ew=1')).detail).toBe("operator 'ew' needs a string attribute; 'price' is not one");
  });

  it('scans when allowed, in primary-key order', () => {
    const table = productTable();
    expect(ids(run('color=red', table, { allowScan: true, maxResults: 100 }))).toEqual([1, 3, 7]);
    expect(table.scanCalls).toBe(1);
    expect(ids(run('name=ct=i&inStock=true', productTable(), { allowScan: true, maxResults: 100 }))).toEqual([3, 4, 7]);
    expect(ids(run('color=ne=red', productTable(), { allowScan: true, maxResults: 100 }))).toEqual([2, 4, 5, 6]);
    // =ew= (ends with), like =ct=, filters a scan or the records an indexed condition found.
    const names = (query: string): string[] => run(query, productTable(), { allowScan: true, maxResults: 100 }).map((record) => String(record.name));
    expect(names('name=ew=er').every((name) => name.endsWith('er'))).toBe(true);
    expect(names('name=ew=er').length).toBeGreaterThan(0);
    expect(names('name=ew=no-such-ending')).toEqual([]);
  });

  it('lists the collection without a filter, stopping at the limit', () => {
    const table = productTable([]);
    expect(ids(run('limit(2)', table))).toEqual([1, 2]);
    expect(table.recordsRead).toBe(2);
    expect(ids(run('limit(2,4)', productTable([])))).toEqual([3, 4]);
    expect(ids(run('', productTable([])))).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });
});

describe('executeQuery: OR', () => {
  it('unions the branches in branch order without repeats', () => {
    const table = productTable();
    expect(ids(run('category=tools|price=lt=10', table))).toEqual([1, 2, 6, 7, 3, 5]);
    expect(table.rangeCalls.map((call) => call.attribute)).toEqual(['category', 'price']);
  });

  it('drives an AND by an OR whose branches are all indexed, and post-filters', () => {
    const table = productTable();
    expect(ids(run('(name=Saw|name=Widget|price=ge=20)&color=ne=green', table))).toEqual([6, 3]);
    expect(table.scanCalls).toBe(0);
  });

  it('applies & inside a branch', () => {
    expect(ids(run('category=gadgets&inStock=false|name=Saw'))).toEqual([5, 6]);
  });
});

describe('executeQuery: sort', () => {
  it('uses the driving index order, reading only what the page needs', () => {
    const table = productTable();
    expect(ids(run('price=gt=5&sort(-price)&limit(2)', table))).toEqual([4, 6]);
    expect(table.rangeCalls[0]?.descending).toBe(true);
    expect(table.recordsRead).toBe(2);
  });

  it('reads the primary key index backwards for sort(-id)', () => {
    const table = productTable([]);
    expect(ids(run('sort(-id)&limit(3)', table))).toEqual([7, 6, 5]);
    expect(table.recordsRead).toBe(3);
  });

  it('sorts in memory by several keys, ties kept in primary-key order', () => {
    expect(ids(run('sort(category,-price)', productTable()))).toEqual([7, 4, 5, 3, 6, 1, 2]);
    expect(ids(run('price=lt=100&sort(price)'))).toEqual([7, 3, 2, 5, 1, 6, 4]);
    expect(ids(run('category=tools&sort(-name)&limit(1,3)'))).toEqual([6, 1]);
  });

  it('puts absent values first and structured values last', () => {
    expect(ids(run('sort(color)&limit(2)'))).toEqual([5, 2]);
    expect(ids(run('sort(-tags)&limit(1)'))).toEqual([6]);
  });

  it('refuses an in-memory sort larger than maxResults, unless a limit bounds it', () => {
    const options = { allowScan: false, maxResults: 3 };
    expect(rejection(() => run('sort(name)', productTable(), options)).detail).toContain('more than 3 records');
    expect(ids(run('sort(name)&limit(2)', productTable(), options))).toEqual([7, 4]);
    expect(ids(run('sort(-price)&limit(1,3)', productTable(), options))).toEqual([6, 1]);
  });

  it('refuses more results than maxResults without a limit', () => {
    const options = { allowScan: false, maxResults: 3 };
    expect(rejection(() => run('', productTable(), options)).detail).toBe('the query matches more than 3 records; add limit() or narrow the filter');
    expect(ids(run('category=tools', productTable(), options))).toEqual([1, 2, 6]);
    expect(run('limit(0)', productTable(), options)).toEqual([]);
  });
});

describe('executeQuery: select and validation', () => {
  it('projects the selected attributes, omitting absent ones', () => {
    expect(run('category=gadgets&select(name,color)')).toEqual([{ name: 'Widget', color: 'red' }, { name: 'Gizmo', color: 'green' }, { name: 'Whatsit' }]);
  });

  it('rejects unknown attributes in select, sort and filter', () => {
    expect(rejection(() => run('select(name,weight)')).detail).toBe("unknown attribute 'weight' in select()");
    expect(rejection(() => run('sort(weight)')).detail).toBe("unknown attribute 'weight' in sort()");
    expect(rejection(() => run('weight=3')).detail).toBe("unknown attribute 'weight'");
  });

  it('types values by the schema and rejects ones that do not parse', () => {
    expect(ids(run('price=10'))).toEqual([]);
    expect(ids(run('price=8'))).toEqual([2, 5]);
    expect(rejection(() => run('price=gt=abc')).detail).toContain("'abc' is not a Float");
    expect(rejection(() => run('price=sw=1')).detail).toBe("operator 'sw' needs a string attribute; 'price' is not one");
  });

  it('matches null explicitly', () => {
    expect(ids(run('category=null'))).toEqual([7]);
  });
});

describe('executeQuery: mixed types in one attribute', () => {
  const mixed: Row[] = [
    { id: 'a', tag: 'zeta' }, { id: 'b', tag: 10 }, { id: 'c', tag: null }, { id: 'd', tag: true },
    { id: 'e', tag: '10' }, { id: 'f', tag: false }, { id: 'g', tag: -3.5 }, { id: 'h' }, { id: 'i', tag: 'Zeta' },
  ];
  const table = () => new MemoryTable('id', { id: 'String', tag: 'Any' }, new Set(['tag']), mixed);

  it('orders null < false < true < numbers < strings (code units), absent first', () => {
    expect(ids(run('sort(tag)', table()))).toEqual(['h', 'c', 'f', 'd', 'g', 'b', 'e', 'i', 'a']);
    expect(ids(run('sort(-tag)', table()))).toEqual(['a', 'i', 'e', 'b', 'g', 'd', 'f', 'c', 'h']);
  });

  it('compares within the type of the value, via the index and via a scan alike', () => {
    for (const options of [defaults, { allowScan: true, maxResults: 100 }]) {
      const reader = options.allowScan ? new MemoryTable('id', { id: 'String', tag: 'Any' }, new Set(), mixed) : table();
      expect(ids(run('tag=gt=0&sort(tag)', reader, options))).toEqual(['b']);
      expect(ids(run('tag=lt=a&sort(tag)', reader, options))).toEqual(['e', 'i']);
      expect(ids(run('tag=ge=false&sort(tag)', reader, options))).toEqual(['f', 'd']);
      expect(ids(run('tag=10', reader, options))).toEqual(['b']);
      expect(ids(run('tag=null', reader, options))).toEqual(['c']);
    }
  });
});

// ---- A randomized cross-check against a brute-force evaluator with its own semantics.


type Cond = { attribute: string; op: string; value: IndexValue };
type Expr = { kind: 'cond'; cond: Cond } | { kind: 'and' | 'or'; items: Expr[] };

function bruteMatch(expr: Expr, row: Row): boolean {
  if (expr.kind !== 'cond') {
    return expr.kind === 'and' ? expr.items.every((item) => bruteMatch(item, row)) : expr.items.some((item) => bruteMatch(item, row));
  }
  const { attribute, op, value } = expr.cond;
  const actual = row[attribute];
  if (!isIndexValue(actual)) return op === 'ne';
  const sameType = rank(actual) === rank(value);
  const order = referenceCompare(actual, value);
  switch (op) {
    case 'eq': return order === 0;
    case 'ne': return order !== 0;
    case 'gt': return sameType && order > 0;
    case 'ge': return sameType && order >= 0;
    case 'lt': return sameType && order < 0;
    case 'le': return sameType && order <= 0;
    case 'sw': return typeof actual === 'string' && typeof value === 'string' && actual.startsWith(value);
    default: return typeof actual === 'string' && typeof value === 'string' && actual.includes(value);
  }
}

function exprText(expr: Expr, top: boolean): string {
  if (expr.kind === 'cond') {
    const { attribute, op, value } = expr.cond;
    return `${attribute}=${op}=${encodeURIComponent(String(value))}`;
  }
  const text = expr.items.map((item) => exprText(item, false)).join(expr.kind === 'and' ? '&' : '|');
  return top && expr.kind === 'and' ? text : `(${text})`;
}

describe('executeQuery: randomized cross-check against brute force', () => {
  it('agrees on 400 random queries (seeded)', () => {
    const seed = 20_240_611;
    const random = seededRandom(seed);
    const pick = <T,>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const categories = ['a', 'b', 'c', 'ab'];
    const rows: Row[] = Array.from({ length: 60 }, (_, index) => ({
      id: index + 1,
      category: pick(categories),
      price: index * 7 % 61 + 0.5,
      stock: random() < 0.15 ? null : Math.floor(random() * 20),
      label: random() < 0.1 ? undefined : pick(['ax', 'ay', 'b', 'bz', 'c']),
    }));
    const schema: Record<string, AttributeType> = { id: 'Int', category: 'String', price: 'Float', stock: 'Int', label: 'String' };
    const numberValue = (attribute: string): number => (attribute === 'price' ? Math.floor(random() * 62) + 0.5 : Math.floor(random() * 22) - 1);
    const randomCond = (): Cond => {
      const attribute = pick(['category', 'price', 'stock', 'label', 'id']);
      const isString = attribute === 'category' || attribute === 'label';
      const op = pick(isString ? ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sw', 'ct'] : ['eq', 'ne', 'gt', 'lt', 'ge', 'le']);
      const value = isString ? pick(['a', 'b', 'ab', 'c', 'ax', 'z']) : numberValue(attribute);
      return { attribute, op, value };
    };
    const randomExpr = (depth: number): Expr => {
      if (depth === 0 || random() < 0.45) return { kind: 'cond', cond: randomCond() };
      return { kind: random() < 0.5 ? 'and' : 'or', items: Array.from({ length: 2 + Math.floor(random() * 2) }, () => randomExpr(depth - 1)) };
    };
    const sorts = [[], ['price'], ['-price'], ['id'], ['-id'], ['category', 'price'], ['-category', '-id'], ['stock', 'id']];
    let ran = 0;
    let refused = 0;
    for (let iteration = 0; iteration < 400; iteration++) {
      const expr = randomExpr(2);
      const sort = pick(sorts);
      const offset = random() < 0.3 ? Math.floor(random() * 5) : 0;
      const limit = random() < 0.5 ? Math.floor(random() * 8) : undefined;
      const parts = [exprText(expr, true)];
      if (sort.length > 0) parts.push(`sort(${sort.map((key) => (key.startsWith('-') ? key : `+${key}`)).join(',')})`);
      if (limit !== undefined) parts.push(`limit(${offset},${offset + limit})`);
      else if (offset > 0) parts.push(`limit(${offset},1000)`);
      const queryString = parts.join('&');
      const allowScan = random() < 0.5;
      const table = new MemoryTable('id', schema, new Set(['category', 'price', 'stock']), rows);

      let expected = rows.filter((row) => bruteMatch(expr, row));
      expected = [...expected].sort((left, right) => {
        for (const key of sort) {
          const attribute = key.replace('-', '');
          const leftValue = left[attribute];
          const rightValue = right[attribute];
          const order = referenceCompare(isIndexValue(leftValue) ? leftValue : null, isIndexValue(rightValue) ? rightValue : null);
          if (order !== 0) return key.startsWith('-') ? -order : order;
        }
        return 0;
      });
      let actual: Row[];
      try {
        actual = executeQuery(parseQuery(queryString), table, { allowScan, maxResults: 1000 });
      } catch (error) {
        // Only a refusal to scan is acceptable, and only when scans are off.
        expect({ seed, iteration, queryString, allowScan, error: String(error) }).toMatchObject({ allowScan: false });
        expect(error).toBeInstanceOf(Problem);
        refused++;
        continue;
      }
      ran++;
      const context = { seed, iteration, queryString, allowScan };
      if (sort.length === 0) {
        // Order without sort() depends on the plan; compare as sets, after paging as counts.
        const expectedIds = ids(expected).sort();
        if (limit === undefined && offset === 0) expect({ ...context, ids: ids(actual).sort() }).toEqual({ ...context, ids: expectedIds });
        else {
          expect(actual.length).toBe(Math.max(0, Math.min(limit ?? 1000, expected.length - offset)));
          for (const id of ids(actual)) expect(expectedIds).toContain(id);
        }
      } else {
        // Every sort list ends in a unique key (price and id are unique here), so the order is total.
        const page = expected.slice(offset, limit === undefined ? undefined : offset + limit);
        expect({ ...context, ids: ids(actual) }).toEqual({ ...context, ids: ids(page) });
      }
    }
    expect(ran).toBeGreaterThan(250);
    expect(refused).toBeGreaterThan(0);
  });
});
