// The REST query language as a typed builder: `where('price').gt(5).and('category').eq('tools')
// .sort('+price').limit(10)` renders `price=gt=5&category=tools&sort(+price)&limit(10)`, with
// values percent-encoded. A string query passes through unchanged.

type Scalar = string | number | boolean;
type Operator = 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le' | 'sw' | 'ew' | 'ct';

export class Query<T = Record<string, unknown>> {
  private constructor(
    private readonly filters: readonly string[],
    private readonly joiner: '&' | '|',
    private readonly tail: readonly string[],
  ) {}

  static where<T = Record<string, unknown>>(attribute: NoInfer<keyof T & string>): Condition<T> {
    return new Condition<T>(new Query<T>([], '&', []), attribute, '&');
  }

  /** @internal */
  static add<T>(query: Query<T>, filter: string, joiner: '&' | '|'): Query<T> {
    // The second condition decides how they join; a later one must join the same way.
    if (query.filters.length > 1 && joiner !== query.joiner) throw new Error('a query joins its conditions with and or with or, not both; write mixed groups as a string');
    return new Query<T>([...query.filters, filter], joiner, query.tail);
  }

  and(attribute: keyof T & string): Condition<T> {
    return new Condition<T>(this, attribute, '&');
  }

  or(attribute: keyof T & string): Condition<T> {
    return new Condition<T>(this, attribute, '|');
  }

  /** `sort('+price', '-name')` */
  sort(...attributes: `${'+' | '-'}${keyof T & string}`[]): Query<T> {
    return new Query<T>(this.filters, this.joiner, [...this.tail, `sort(${attributes.join(',')})`]);
  }

  limit(count: number, offset = 0): Query<T> {
    if (!Number.isInteger(count) || count < 0 || !Number.isInteger(offset) || offset < 0) throw new Error('limit takes non-negative integers');
    return new Query<T>(this.filters, this.joiner, [...this.tail, offset === 0 ? `limit(${count})` : `limit(${offset},${offset + count})`]);
  }

  select(...attributes: (keyof T & string)[]): Query<T> {
    return new Query<T>(this.filters, this.joiner, [...this.tail, `select(${attributes.join(',')})`]);
  }

  toString(): string {
    const filter = this.joiner === '|' && this.filters.length > 1 ? `(${this.filters.join('|')})` : this.filters.join('&');
    return [filter, ...this.tail].filter((part) => part !== '').join('&');
  }
}

export class Condition<T> {
  constructor(
    private readonly query: Query<T>,
    private readonly attribute: string,
    private readonly joiner: '&' | '|',
  ) {}

  private op(operator: Operator, value: Scalar): Query<T> {
    const encoded = encodeURIComponent(String(value));
    const name = encodeURIComponent(this.attribute);
    return Query.add(this.query, operator === 'eq' ? `${name}=${encoded}` : `${name}=${operator}=${encoded}`, this.joiner);
  }

  eq(value: Scalar): Query<T> {
    return this.op('eq', value);
  }
  ne(value: Scalar): Query<T> {
    return this.op('ne', value);
  }
  gt(value: Scalar): Query<T> {
    return this.op('gt', value);
  }
  ge(value: Scalar): Query<T> {
    return this.op('ge', value);
  }
  lt(value: Scalar): Query<T> {
    return this.op('lt', value);
  }
  le(value: Scalar): Query<T> {
    return this.op('le', value);
  }
  startsWith(value: string): Query<T> {
    return this.op('sw', value);
  }
  endsWith(value: string): Query<T> {
    return this.op('ew', value);
  }
  contains(value: string): Query<T> {
    return this.op('ct', value);
  }
}

export const where = Query.where;
