import { describe, expect, it } from 'vitest';
import { compileValidator, parseSchema, type RecordValidator } from '../../src/schema/index.js';

const sdl = `
type Geo { lat: Float! lon: Float! }
type Address @sealed { street: String! city: String! geo: Geo }
type Node { label: String! children: [Node!] }

type Brand @table { id: ID @primaryKey name: String }

type Item @table @sealed {
  id: ID @primaryKey
  name: String!
  count: Int
  big: Long
  price: Float
  active: Boolean
  when: Date
  extra: Any
  must: Any!
  tags: [String!]
  matrix: [[Int]]
  address: Address
  addresses: [Address]
  tree: Node
  brandId: ID
  brand: Brand @relationship(from: brandId)
  createdAt: Long! @createdTime
  updatedAt: Date! @updatedTime
}

type Open @table { code: Int! @primaryKey, label: String! }
`;

const schema = parseSchema(sdl);
function validatorFor(tableName: string): RecordValidator {
  const table = schema.tables.get(tableName);
  if (table === undefined) throw new Error(`no table ${tableName}`);
  return compileValidator(schema, table);
}
const item = validatorFor('Item');
const open = validatorFor('Open');
const minimalItem = { name: 'widget', must: 0 };

describe('compileValidator in full mode', () => {
  it('accepts a complete record', () => {
    const record = {
      id: 'w-1', name: 'widget', count: -2147483648, big: 9007199254740991, price: 9.5, active: false,
      when: '2024-05-01T10:00:00.123Z', extra: { anything: [1, 'two', null] }, must: 'x', tags: ['a', 'b'],
      matrix: [[1, null], null, []], address: { street: 'Main 1', city: 'Oslo', geo: { lat: 59.9, lon: 10.7, alt: 3 } },
      addresses: [null, { street: 's', city: 'c' }], tree: { label: 'root', children: [{ label: 'leaf', children: [] }] },
      brandId: 42, createdAt: 1714557600000, updatedAt: 1714557600000,
    };
    expect(item(record, 'full')).toEqual([]);
  });

  it('accepts the minimal record: primary key and timestamps are filled in by the system', () => {
    expect(item(minimalItem, 'full')).toEqual([]);
  });

  it('reports missing required attributes', () => {
    expect(item({}, 'full')).toEqual([
      { field: 'name', message: 'is required' },
      { field: 'must', message: 'is required' },
    ]);
  });

  it('accepts null on optional attributes and rejects it on required ones', () => {
    expect(item({ ...minimalItem, count: null, when: null, tags: null, address: null, extra: null }, 'full')).toEqual([]);
    expect(item({ name: null, must: null }, 'full')).toEqual([
      { field: 'name', message: 'must not be null' },
      { field: 'must', message: 'must not be null' },
    ]);
  });

  const scalarCases: ReadonlyArray<readonly [string, readonly unknown[], readonly unknown[], string]> = [
    ['id', ['a', '', 0, -5, Number.MAX_SAFE_INTEGER], [1.5, true, {}, []], 'must be ID (a string or an integer)'],
    ['name', ['', 'x'.repeat(1000)], [1, false, ['a'], {}], 'must be String'],
    ['count', [0, 2147483647, -2147483648, 3.0], [1.5, '1', true], 'must be Int'],
    ['big', [0, -9007199254740991], [0.5, '12', true], 'must be Long'],
    ['price', [0, -1.25, 1e300], ['1.5', true, {}], 'must be Float'],
    ['active', [true, false], [0, 'true', 'false', 1], 'must be Boolean'],
    ['when', ['2024-05-01', '2024-05-01T10:00Z', '2024-05-01T10:00:00+02:00', 0, 1714557600000, new Date(0)],
      ['2024-05-01T10:00:00', 'yesterday', '2024-13-45', 1.5, true, new Date(Number.NaN)],
      'must be Date (ISO-8601 date or date-time with zone, or integer epoch milliseconds)'],
  ];
  for (const [attribute, good, bad, message] of scalarCases) {
    it(`checks ${attribute} values`, () => {
      for (const value of good) expect(item({ ...minimalItem, [attribute]: value }, 'full'), String(value)).toEqual([]);
      for (const value of bad) expect(item({ ...minimalItem, [attribute]: value }, 'full'), String(value)).toEqual([{ field: attribute, message }]);
    });
  }

  it('checks integer ranges', () => {
    expect(item({ ...minimalItem, count: 2147483648 }, 'full')).toEqual([{ field: 'count', message: 'must be Int (a 32-bit signed integer, -2147483648 to 2147483647)' }]);
    expect(item({ ...minimalItem, count: -2147483649 }, 'full')).toEqual([{ field: 'count', message: 'must be Int (a 32-bit signed integer, -2147483648 to 2147483647)' }]);
    expect(item({ ...minimalItem, big: 2 ** 53 }, 'full')).toEqual([{ field: 'big', message: 'must be Long (a safe integer, at most 2^53-1 in magnitude)' }]);
    expect(item({ ...minimalItem, id: 2 ** 60 }, 'full')).toEqual([{ field: 'id', message: 'must be ID (a string or a safe integer)' }]);
  });

  it('rejects non-finite floats', () => {
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      expect(item({ ...minimalItem, price: value }, 'full')).toEqual([{ field: 'price', message: 'must be Float' }]);
    }
  });

  it('accepts anything, null included, in Any; Any! refuses only null', () => {
    for (const value of [null, 0, 'x', [null], { deep: { er: [1] } }, new Uint8Array([1, 2])]) {
      expect(item({ ...minimalItem, extra: value }, 'full')).toEqual([]);
    }
    expect(item({ ...minimalItem, must: new Uint8Array(0) }, 'full')).toEqual([]);
  });

  it('names list elements by index', () => {
    expect(item({ ...minimalItem, tags: ['a', 3, null] }, 'full')).toEqual([
      { field: 'tags.1', message: 'must be String' },
      { field: 'tags.2', message: 'must not be null' },
    ]);
    expect(item({ ...minimalItem, tags: 'a' }, 'full')).toEqual([{ field: 'tags', message: 'must be a list ([String!])' }]);
    expect(item({ ...minimalItem, matrix: [[1, 'x'], 5] }, 'full')).toEqual([
      { field: 'matrix.0.1', message: 'must be Int' },
      { field: 'matrix.1', message: 'must be a list ([Int])' },
    ]);
  });

  it('checks nested objects, with their own @sealed and required attributes', () => {
    expect(item({ ...minimalItem, address: { street: 'x', city: 7, zip: '0150', geo: { lat: 'north' } } }, 'full')).toEqual([
      { field: 'address.zip', message: 'unknown attribute (type Address is @sealed)' },
      { field: 'address.city', message: 'must be String' },
      { field: 'address.geo.lon', message: 'is required' },
      { field: 'address.geo.lat', message: 'must be Float' },
    ]);
    expect(item({ ...minimalItem, address: 'Main street' }, 'full')).toEqual([{ field: 'address', message: 'must be an object (Address)' }]);
    expect(item({ ...minimalItem, addresses: [{ street: 's' }] }, 'full')).toEqual([{ field: 'addresses.0.city', message: 'is required' }]);
  });

  it('follows recursive nested types', () => {
    const tree = { label: 'a', children: [{ label: 'b', children: [{ label: 'c', children: [{ children: [] }] }] }] };
    expect(item({ ...minimalItem, tree }, 'full')).toEqual([{ field: 'tree.children.0.children.0.children.0.label', message: 'is required' }]);
  });

  it('rejects unknown attributes on a @sealed table', () => {
    expect(item({ ...minimalItem, colour: 'red', size: 3 }, 'full')).toEqual([
      { field: 'colour', message: 'unknown attribute (table is @sealed)' },
      { field: 'size', message: 'unknown attribute (table is @sealed)' },
    ]);
  });

  it('accepts extra attributes of any type on an unsealed table', () => {
    expect(open({ label: 'x', colour: 'red', n: null, nested: { a: [1] } }, 'full')).toEqual([]);
    expect(open({ label: 1, colour: 'red' }, 'full')).toEqual([{ field: 'label', message: 'must be String' }]);
  });

  it('refuses writes to a relationship attribute', () => {
    expect(item({ ...minimalItem, brand: { id: 1 } }, 'full')).toEqual([
      { field: 'brand', message: 'is a @relationship attribute, computed when read; it cannot be written' },
    ]);
  });

  it('checks timestamps and the primary key when they are present', () => {
    expect(item({ ...minimalItem, createdAt: 'now', updatedAt: 'later' }, 'full')).toEqual([
      { field: 'createdAt', message: 'must be Long' },
      { field: 'updatedAt', message: 'must be Date (ISO-8601 date or date-time with zone, or integer epoch milliseconds)' },
    ]);
    expect(open({ code: 'A', label: 'x' }, 'full')).toEqual([{ field: 'code', message: 'must be Int' }]);
  });

  it('rejects a record that is not an object', () => {
    for (const record of [null, 'x', 3, [minimalItem]]) {
      expect(item(record, 'full')).toEqual([{ field: '', message: 'must be an object (a record of Item)' }]);
    }
  });

  it('treats a __proto__ key as an attribute, not as the prototype', () => {
    const record: unknown = JSON.parse('{"name":"w","must":1,"__proto__":{"x":1}}');
    expect(item(record, 'full')).toEqual([{ field: '__proto__', message: 'unknown attribute (table is @sealed)' }]);
  });

  it('escapes nothing in attribute names that contain JSON Pointer characters', () => {
    expect(open({ label: 'x', 'a/b': 1 }, 'full')).toEqual([]);
    expect(item({ ...minimalItem, 'a/b~c': 1 }, 'full')).toEqual([{ field: 'a/b~c', message: 'unknown attribute (table is @sealed)' }]);
  });

  it('reports all problems of one record', () => {
    expect(item({ name: 5, count: 'x', tags: [1], colour: 1 }, 'full')).toHaveLength(5);
  });
});

describe('compileValidator in patch mode', () => {
  it('checks only the attributes present', () => {
    expect(item({}, 'patch')).toEqual([]);
    expect(item({ count: 3 }, 'patch')).toEqual([]);
    expect(item({ count: 'three' }, 'patch')).toEqual([{ field: 'count', message: 'must be Int' }]);
  });

  it('refuses null on a required attribute and accepts it on an optional one', () => {
    expect(item({ name: null }, 'patch')).toEqual([{ field: 'name', message: 'must not be null' }]);
    expect(item({ count: null, address: null }, 'patch')).toEqual([]);
  });

  it('checks a nested object as a whole value', () => {
    expect(item({ address: { street: 'x' } }, 'patch')).toEqual([{ field: 'address.city', message: 'is required' }]);
  });

  it('keeps @sealed and relationship rules', () => {
    expect(item({ colour: 'red', brand: null }, 'patch')).toEqual([
      { field: 'colour', message: 'unknown attribute (table is @sealed)' },
      { field: 'brand', message: 'is a @relationship attribute, computed when read; it cannot be written' },
    ]);
  });
});

describe('compileValidator', () => {
  it('refuses a table from another schema', () => {
    const other = parseSchema(sdl).tables.get('Item');
    if (other === undefined) throw new Error('no Item');
    expect(() => compileValidator(schema, other)).toThrow(/not part of the given schema/);
  });

  it('returns a fresh array per call so callers may keep or extend it', () => {
    const first = item(minimalItem, 'full');
    first.push({ field: 'x', message: 'y' });
    expect(item(minimalItem, 'full')).toEqual([]);
  });
});
