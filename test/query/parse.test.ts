import { describe, expect, it } from 'vitest';
import { Problem } from '../../src/model/problem.js';
import { conditionCountMax, nestingDepthMax, queryStringLengthMax } from '../../src/query/limits.js';
import { parseQuery } from '../../src/query/parse.js';
import type { Filter, Operator } from '../../src/query/types.js';

function cond(attribute: string, op: Operator, value: string): Filter {
  return { kind: 'cond', attribute, op, value };
}

/** The 400 a query string fails with; fails the test if it parses. */
function syntaxError(queryString: string): Problem {
  try {
    parseQuery(queryString);
  } catch (error) {
    expect(error).toBeInstanceOf(Problem);
    return error as Problem;
  }
  throw new Error(`expected '${queryString}' to be rejected, but it parsed`);
}

describe('parseQuery: conditions', () => {
  it('parses the empty query as "everything, primary-key order"', () => {
    expect(parseQuery('')).toEqual({ sort: [], offset: 0 });
  });

  it.each([
    ['name=Widget', cond('name', 'eq', 'Widget')],
    ['name==Widget', cond('name', 'eq', 'Widget')],
    ['name=eq=Widget', cond('name', 'eq', 'Widget')],
    ['name=ne=Widget', cond('name', 'ne', 'Widget')],
    ['name!=Widget', cond('name', 'ne', 'Widget')],
    ['price=gt=10', cond('price', 'gt', '10')],
    ['price=ge=10', cond('price', 'ge', '10')],
    ['price=lt=10', cond('price', 'lt', '10')],
    ['price=le=10', cond('price', 'le', '10')],
    ['name=sw=Wid', cond('name', 'sw', 'Wid')],
    ['name=ew=get', cond('name', 'ew', 'get')],
    ['name==Wid*', cond('name', 'sw', 'Wid')],
    ['name=ct=dge', cond('name', 'ct', 'dge')],
    ['name=GT=b', cond('name', 'gt', 'b')],
    ['name=', cond('name', 'eq', '')],
  ])('%s', (queryString, expected) => {
    expect(parseQuery(queryString).filter).toEqual(expected);
  });

  it('percent-decodes values and names, after structure is recognised', () => {
    expect(parseQuery('name=a%26b%7Cc%28d%29').filter).toEqual(cond('name', 'eq', 'a&b|c(d)'));
    expect(parseQuery('city=S%C3%A3o%20Paulo').filter).toEqual(cond('city', 'eq', 'São Paulo'));
    expect(parseQuery('n%61me=x').filter).toEqual(cond('name', 'eq', 'x'));
    // '+' is kept: this is not form encoding, and sort(+a) relies on it.
    expect(parseQuery('name=a+b').filter).toEqual(cond('name', 'eq', 'a+b'));
    // An encoded '*' is a literal star, not a prefix wildcard.
    expect(parseQuery('name==Wid%2A').filter).toEqual(cond('name', 'eq', 'Wid*'));
    expect(parseQuery('note=hi!').filter).toEqual(cond('note', 'eq', 'hi!'));
  });
});

describe('parseQuery: boolean structure', () => {
  it('joins & into an AND', () => {
    expect(parseQuery('a=1&b=2&c=3').filter).toEqual({ kind: 'and', items: [cond('a', 'eq', '1'), cond('b', 'eq', '2'), cond('c', 'eq', '3')] });
  });

  it('binds & tighter than |', () => {
    expect(parseQuery('a=1|b=2&c=3').filter).toEqual({
      kind: 'or',
      items: [cond('a', 'eq', '1'), { kind: 'and', items: [cond('b', 'eq', '2'), cond('c', 'eq', '3')] }],
    });
    expect(parseQuery('a=1&b=2|c=3').filter).toEqual({
      kind: 'or',
      items: [{ kind: 'and', items: [cond('a', 'eq', '1'), cond('b', 'eq', '2')] }, cond('c', 'eq', '3')],
    });
  });

  it('lets parentheses override precedence', () => {
    expect(parseQuery('(a=1|b=2)&c=3').filter).toEqual({
      kind: 'and',
      items: [{ kind: 'or', items: [cond('a', 'eq', '1'), cond('b', 'eq', '2')] }, cond('c', 'eq', '3')],
    });
  });

  it('flattens nested groups of the same kind', () => {
    expect(parseQuery('a=1&(b=2&c=3)').filter).toEqual({ kind: 'and', items: [cond('a', 'eq', '1'), cond('b', 'eq', '2'), cond('c', 'eq', '3')] });
    expect(parseQuery('((a=1))').filter).toEqual(cond('a', 'eq', '1'));
    expect(parseQuery('(a=1|(b=2|c=3))').filter).toEqual({ kind: 'or', items: [cond('a', 'eq', '1'), cond('b', 'eq', '2'), cond('c', 'eq', '3')] });
  });
});

describe('parseQuery: chained ranges', () => {
  it("reads Harper's `price=gt=10&lt=20` as two bounds on price", () => {
    expect(parseQuery('price=gt=10&lt=20').filter).toEqual({ kind: 'and', items: [cond('price', 'gt', '10'), cond('price', 'lt', '20')] });
    expect(parseQuery('price=le=20&ge=10').filter).toEqual({ kind: 'and', items: [cond('price', 'le', '20'), cond('price', 'ge', '10')] });
  });

  it('accepts the explicit form too', () => {
    expect(parseQuery('price=gt=10&price=lt=20').filter).toEqual({ kind: 'and', items: [cond('price', 'gt', '10'), cond('price', 'lt', '20')] });
  });

  it('does not chain a same-side bound or a non-range predecessor (those are attributes named lt/gt)', () => {
    expect(parseQuery('price=gt=10&gt=20').filter).toEqual({ kind: 'and', items: [cond('price', 'gt', '10'), cond('gt', 'eq', '20')] });
    expect(parseQuery('a=1&lt=20').filter).toEqual({ kind: 'and', items: [cond('a', 'eq', '1'), cond('lt', 'eq', '20')] });
  });

  it('rejects `price=gt=10=lt=20` (not Harper syntax) with a hint', () => {
    const problem = syntaxError('price=gt=10=lt=20');
    expect(problem.detail).toContain('at position 11');
    expect(problem.detail).toContain("price=gt=1&lt=9");
  });
});

describe('parseQuery: sort, limit, select', () => {
  it('parses sort keys with directions', () => {
    expect(parseQuery('sort(+price,-name,id)').sort).toEqual([
      { attribute: 'price', descending: false },
      { attribute: 'name', descending: true },
      { attribute: 'id', descending: false },
    ]);
    expect(parseQuery('sort(%2Bprice)').sort).toEqual([{ attribute: 'price', descending: false }]);
  });

  it('parses limit(end) and limit(start,end)', () => {
    expect(parseQuery('limit(10)')).toEqual({ sort: [], offset: 0, limit: 10 });
    expect(parseQuery('limit(10,25)')).toEqual({ sort: [], offset: 10, limit: 15 });
    expect(parseQuery('limit(0)').limit).toBe(0);
  });

  it('parses select and drops repeats', () => {
    expect(parseQuery('select(name,price,name)').select).toEqual(['name', 'price']);
  });

  it('combines calls with a filter in any order', () => {
    expect(parseQuery('select(name)&category=tools&sort(-price)&limit(5)&price=gt=3')).toEqual({
      filter: { kind: 'and', items: [cond('category', 'eq', 'tools'), cond('price', 'gt', '3')] },
      sort: [{ attribute: 'price', descending: true }],
      offset: 0,
      limit: 5,
      select: ['name'],
    });
    expect(parseQuery('(a=1|b=2)&limit(3)')).toEqual({
      filter: { kind: 'or', items: [cond('a', 'eq', '1'), cond('b', 'eq', '2')] },
      sort: [],
      offset: 0,
      limit: 3,
    });
  });
});

describe('parseQuery: syntax errors name the position and token', () => {
  it.each([
    ['a=1&', 4, 'unexpected end of query'],
    ['&a=1', 0, "unexpected '&'"],
    ['a=1&&b=2', 4, "unexpected '&'"],
    ['a=1|', 4, 'unexpected end of query'],
    ['(a=1', 4, "missing ')'"],
    ['a=1)', 3, "unexpected ')'"],
    ['(a=1|b=2))', 9, "unexpected ')'"],
    ['()', 1, "unexpected ')'"],
    ['name', 0, "expected a condition like 'name=value', got 'name'"],
    ['=5', 0, 'missing attribute name'],
    ['price=xx=5', 5, "unsupported operator '=xx='"],
    ['name=ends=x', 4, "unsupported operator '=ends='"],
    ['a=b=c', 1, "unsupported operator '=b='"],
    ['price=lt=1=2', 10, "unexpected '=' in the value of 'price'"],
    ['address.city=Paris', 0, "nested attribute path 'address.city' is not supported"],
    ['9lives=1', 0, "invalid attribute name '9lives'"],
    ['name=%E0%A4%A', 5, 'malformed percent-encoding'],
    ['a=1&foo(x)', 4, "unknown function 'foo()'"],
    ['sort()', 5, 'sort() needs arguments'],
    ['sort(+a', 7, "missing ')' after sort("],
    ['sort(a,a)', 7, "attribute 'a' appears twice in sort()"],
    ['sort(a)&sort(b)', 8, 'sort() given twice'],
    ['sort(+a.b)', 5, "nested attribute path 'a.b' is not supported"],
    ['limit(-1)', 6, "limit() takes non-negative integers, got '-1'"],
    ['limit(1.5)', 6, "limit() takes non-negative integers, got '1.5'"],
    ['limit(x)', 6, "limit() takes non-negative integers, got 'x'"],
    ['limit(1,2,3)', 6, 'limit() takes one or two arguments'],
    ['limit(20,10)', 6, 'limit(20,10) ends before it starts'],
    ['limit(9999999999)', 6, 'limit() argument above'],
    ['limit(1)&limit(2)', 9, 'limit() given twice'],
    ['select(a,)', 9, 'missing attribute name'],
    ['select(a{b})', 7, "invalid attribute name 'a{b}'"],
    ['a=1|sort(a)', 4, "sort() must be a top-level item joined with '&'"],
    ['(a=1&limit(2))', 5, "limit() must be a top-level item joined with '&'"],
    ['a=1(b=2)', 3, "unexpected '('"],
  ])('%s -> position %i', (queryString, position, message) => {
    const problem = syntaxError(queryString);
    expect(problem.kind).toBe('invalid');
    expect(problem.detail).toContain(message);
    expect(problem.detail).toContain(`at position ${position}`);
    expect(problem.errors).toEqual([{ field: 'query', message: expect.stringContaining(`at position ${position}`) }]);
  });
});

describe('parseQuery: bounds', () => {
  it('refuses query strings over the length limit before parsing', () => {
    const problem = syntaxError(`name=${'x'.repeat(queryStringLengthMax)}`);
    expect(problem.detail).toContain(`longer than ${queryStringLengthMax}`);
    expect(parseQuery(`name=${'x'.repeat(queryStringLengthMax - 5)}`).filter).toBeDefined();
  });

  it('refuses nesting deeper than the limit', () => {
    const nested = (depth: number) => `${'('.repeat(depth)}a=1${')'.repeat(depth)}`;
    expect(parseQuery(nested(nestingDepthMax)).filter).toEqual(cond('a', 'eq', '1'));
    const problem = syntaxError(nested(nestingDepthMax + 1));
    expect(problem.detail).toContain(`nested deeper than ${nestingDepthMax} at position ${nestingDepthMax}`);
  });

  it('refuses more conditions than the limit', () => {
    const conditions = (count: number) => Array.from({ length: count }, (_, index) => `a${index}=1`).join('&');
    expect(parseQuery(conditions(conditionCountMax)).filter).toBeDefined();
    expect(syntaxError(conditions(conditionCountMax + 1)).detail).toContain(`more than ${conditionCountMax} conditions`);
  });
});
