import { describe, expect, it } from 'vitest';
import { parseSchema, SchemaError } from '../../src/schema/index.js';

/** The problems parseSchema reports for `sdl`; fails the test if it accepts the schema. */
function problemsOf(sdl: string): readonly string[] {
  try {
    parseSchema(sdl);
  } catch (error) {
    if (error instanceof SchemaError) return error.problems;
    throw error;
  }
  throw new Error(`expected a SchemaError for:\n${sdl}`);
}

describe('parseSchema rejects', () => {
  const cases: ReadonlyArray<readonly [string, string, readonly string[]]> = [
    ['a syntax error', 'type T @table {\n  id: ID\n  name String\n}', ['3:8: Syntax Error: Expected ":", found Name "String".']],
    ['an unknown directive', 'type T @table {\n  id: ID @unique\n}', ['2:10: Unknown directive "@unique".']],
    ['an unknown type', 'type T @table {\n  id: ID\n  when: Timestamp\n}', ['3:9: Unknown type "Timestamp".']],
    ['an unknown directive argument', 'type T @table(ttl: 5) { id: ID }', ['1:15: Unknown argument "ttl" on directive "@table".']],
    ['a mistyped directive argument', 'type T @table(expiration: "1h") { id: ID }', ['1:27: Int cannot represent non-integer value: "1h"']],
    ['a directive in the wrong place', 'type T @table { id: ID @table }', ['1:24: Directive "@table" may not be used on FIELD_DEFINITION.']],
    ['a repeated directive', 'type T @table @table { id: ID }', ['1:15: The directive "@table" can only be used once at this location.']],
    ['a duplicate type', 'type T @table { id: ID }\ntype T { a: Int }', ['2:6: There can be only one type named "T".']],
    ['a duplicate attribute', 'type T @table { id: ID\n a: Int\n a: String }', ['3:2: Field "T.a" can only be defined once.']],
    ['a type named like a scalar', 'type Date { a: Int }', ['1:6: Type "Date" already exists in the schema. It cannot also be defined in this type definition.']],
    ['an enum', 'enum Color { RED }', ['1:1: EnumTypeDefinition is not supported in a schema; only object types (type X { ... }) are']],
    ['a custom scalar', 'scalar JSON', ['1:1: custom scalar JSON is not supported; use ID, String, Int, Long, Float, Boolean, Date or Any']],
    ['a custom directive', 'directive @auth on OBJECT', ['1:1: custom directive @auth is not supported']],
    ['a type extension', 'extend type T { a: Int }', ['1:1: extend type T is not supported; declare all attributes in one type']],
    ['an interface', 'interface Node { id: ID }\ntype T implements Node @table { id: ID }', [
      '1:1: InterfaceTypeDefinition is not supported in a schema; only object types (type X { ... }) are',
      '2:19: T: interfaces are not supported',
    ]],
    ['a field with arguments', 'type T @table { id: ID\n name(lang: String): String }', ['2:7: T.name: attributes cannot take arguments']],
    ['a table without a primary key', 'type Thing @table {\n  name: String\n}', ['1:6: Thing: a @table needs a primary key: mark one attribute @primaryKey or declare id: ID']],
    ['two primary keys', 'type T @table {\n  a: ID @primaryKey\n  b: ID @primaryKey\n}', ['3:9: T: only one attribute may be @primaryKey (already a)']],
    ['a Float primary key', 'type T @table { key: Float @primaryKey }', ['1:22: T.key: a primary key must be ID, String, Int, Long, not Float']],
    ['a list primary key', 'type T @table { key: [ID] @primaryKey }', ['1:22: T.key: a primary key must be ID, String, Int, Long, not [ID]']],
    ['a default id of the wrong type', 'type T @table { id: Boolean }', ['1:21: T.id: a primary key must be ID, String, Int, Long, not Boolean']],
    ['a timestamp primary key', 'type T @table { at: Long @primaryKey @createdTime }', ['1:17: T.at: the primary key cannot be a @createdTime or @updatedTime attribute']],
    ['two tables with the same export name', 'type A @table @export(name: "things") { id: ID }\ntype B @table @export(name: "things") { id: ID }', [
      '2:15: B: export name "things" is already used by table A',
    ]],
    ['an export name that is not a path segment', 'type A @table @export(name: "a/b") { id: ID }', [
      '1:15: A: export name "a/b" must be 1-128 letters, digits, "_", ".", "~" or "-", not starting with "_", ".", "~" or "-"',
    ]],
    ['@export without @table', 'type A @export(name: "a") { x: Int }', ['1:8: A: @export needs @table; a nested type has no REST path']],
    ['a non-positive expiration', 'type A @table(expiration: 0) { id: ID }', ['1:8: A: @table(expiration:) must be a positive number of seconds, not 0']],
    ['@indexed on a list', 'type T @table { id: ID\n tags: [String] @indexed }', ['2:17: T.tags: @indexed is supported on scalar attributes other than Any, not on [String]']],
    ['@indexed on an object', 'type G { x: Int }\ntype T @table { id: ID\n g: G @indexed }', ['3:7: T.g: @indexed is supported on scalar attributes other than Any, not on G']],
    ['@indexed on Any', 'type T @table { id: ID\n extra: Any @indexed }', ['2:13: T.extra: @indexed is supported on scalar attributes other than Any, not on Any']],
    ['@createdTime on a String', 'type T @table { id: ID\n at: String @createdTime }', ['2:13: T.at: @createdTime needs Long, Float or Date (epoch milliseconds), not String']],
    ['@updatedTime on an Int', 'type T @table { id: ID\n at: Int @updatedTime }', ['2:10: T.at: @updatedTime needs Long, Float or Date (epoch milliseconds), not Int']],
    ['@updatedTime on a list', 'type T @table { id: ID\n at: [Long] @updatedTime }', ['2:13: T.at: @updatedTime needs Long, Float or Date (epoch milliseconds), not [Long]']],
    ['two @createdTime attributes', 'type T @table { id: ID\n a: Long @createdTime\n b: Long @createdTime }', ['3:10: T: only one attribute may be @createdTime (already a)']],
    ['both timestamps on one attribute', 'type T @table { id: ID\n a: Long @createdTime @updatedTime }', ['2:23: T.a: an attribute cannot be both @createdTime and @updatedTime']],
    ['table-only directives in a nested type', 'type N { a: Int @indexed }', ['1:17: N.a: @indexed is only allowed on attributes of a @table type (N is a nested type)']],
    ['embedding a table without @relationship', 'type A @table { id: ID }\ntype B @table { id: ID\n a: A }', ['3:5: B.a: A is a @table type; reference it with @relationship(from:) or @relationship(to:)']],
    ['a nested type that embeds a table', 'type A @table { id: ID }\ntype N { a: [A] }', ['2:13: N.a: A is a @table type; reference it only from a table attribute with @relationship']],
    ['@relationship to a nested type', 'type N { x: Int }\ntype B @table { id: ID\n nId: ID\n n: N @relationship(from: "nId") }', ['4:5: B.n: @relationship needs a @table type or a list of one, not N']],
    ['@relationship with both from and to', 'type A @table { id: ID bId: ID }\ntype B @table { id: ID\n a: [A] @relationship(from: "x", to: "bId") }', [
      '3:9: B.a: @relationship needs exactly one of from: or to:',
    ]],
    ['@relationship from a missing attribute', 'type A @table { id: ID }\ntype B @table { id: ID\n a: A @relationship(from: aId) }', ['3:2: B.a: @relationship(from: "aId"): B has no attribute aId']],
    ['@relationship from a scalar to a list', 'type A @table { id: ID }\ntype B @table { id: ID aId: ID\n a: [A] @relationship(from: aId) }', ['3:2: B.a: aId is ID; it must hold a list of A keys ([ID])']],
    ['@relationship(to:) on a single record', 'type A @table { id: ID bId: ID }\ntype B @table { id: ID\n a: A @relationship(to: bId) }', [
      '3:2: B.a: @relationship(to: "bId") resolves every A that points here, so declare it as a list: [A]',
    ]],
    ['@relationship to a missing attribute', 'type A @table { id: ID }\ntype B @table { id: ID\n a: [A] @relationship(to: bId) }', ['3:2: B.a: @relationship(to: "bId"): A has no attribute bId']],
    ['@indexed on a relationship', 'type A @table { id: ID }\ntype B @table { id: ID aId: ID\n a: A @relationship(from: aId) @indexed }', [
      '3:32: B.a: a @relationship attribute is computed, not stored; it cannot be @indexed',
    ]],
    ['a reserved attribute name', 'type T @table { id: ID\n __proto__: String }', ['2:2: T.__proto__: names starting with "__" are reserved']],
    ['a reserved type name', 'type __T { a: Int }', ['1:6: __T: names starting with "__" are reserved']],
  ];
  for (const [what, sdl, expected] of cases) {
    it(what, () => {
      expect(problemsOf(sdl)).toEqual(expected);
    });
  }

  it('reports every problem of a schema at once, in document order', () => {
    const problems = problemsOf(`
type A @table { name: String }
type B @table { id: ID
  tags: [String] @indexed
  at: String @updatedTime
}`);
    expect(problems).toEqual([
      '2:6: A: a @table needs a primary key: mark one attribute @primaryKey or declare id: ID',
      '4:18: B.tags: @indexed is supported on scalar attributes other than Any, not on [String]',
      '5:14: B.at: @updatedTime needs Long, Float or Date (epoch milliseconds), not String',
    ]);
  });

  it('puts the problems in the error message too', () => {
    expect(() => parseSchema('type T @table { id: ID @bogus }')).toThrow(/invalid schema:\n1:24: Unknown directive "@bogus"/);
  });

  it('an oversized schema', () => {
    expect(problemsOf(`# ${'x'.repeat(1024 * 1024)}\ntype T @table { id: ID }`)).toEqual(['1:1: schema is larger than 1048576 bytes']);
  });
});
