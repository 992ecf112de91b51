// The query vocabulary shared by the parser, the executor and the storage layer that serves it.
// The parser produces a `Query` from a URL query string without knowing any schema; values stay raw
// strings until the executor asks the table (`TableReader.coerce`) what type an attribute has.

export type Operator = 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le' | 'sw' | 'ew' | 'ct';

export type Filter =
  | { readonly kind: 'cond'; readonly attribute: string; readonly op: Operator; readonly value: string }
  | { readonly kind: 'and' | 'or'; readonly items: readonly Filter[] };

export interface SortKey {
  readonly attribute: string;
  readonly descending: boolean;
}

export interface Query {
  readonly filter?: Filter;
  readonly sort: readonly SortKey[];
  readonly offset: number;
  readonly limit?: number;
  readonly select?: readonly string[];
}

/** A value as it is ordered in an index. The total order across types is
 *  null < boolean < number < string (see compare.ts); the storage layer must order keys the same way. */
export type IndexValue = string | number | boolean | null;

export interface Bound {
  readonly value: IndexValue;
  readonly inclusive: boolean;
}

/** One table, read at one consistent point (one LMDB read transaction). Implemented by storage. */
export interface TableReader {
  readonly primaryKey: string;
  /** Whether the table's schema declares `attribute` (used to reject unknown select/sort attributes). */
  hasAttribute(attribute: string): boolean;
  /** Converts a raw query value to the attribute's type; throws Problem('invalid') naming the attribute
   *  if it does not parse (e.g. 'abc' for an Int). Unknown attribute -> 400 too. */
  coerce(attribute: string, raw: string): IndexValue;
  /** The primary key counts as indexed. */
  isIndexed(attribute: string): boolean;
  /** Ids whose `attribute` value lies between the bounds (undefined = open), in value order (then id);
   *  `descending` reverses that order. Bounds are positions in the cross-type total order, so a lower
   *  bound of `{ value: true, inclusive: false }` means "after every boolean", i.e. numbers and strings. */
  idsInRange(
    attribute: string,
    lower: Bound | undefined,
    upper: Bound | undefined,
    descending: boolean,
  ): Iterable<string | number>;
  get(id: string | number): Record<string, unknown> | undefined;
  /** Every record, in primary-key order. */
  scan(): Iterable<Record<string, unknown>>;
}

export interface ExecuteOptions {
  /** Whether a filter that no index can drive may fall back to reading the whole table. */
  readonly allowScan: boolean;
  /** Upper bound on records held in memory for one response (result rows, in-memory sort buffer). */
  readonly maxResults: number;
}
