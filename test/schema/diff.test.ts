import { describe, expect, it } from 'vitest';
import { diffSchemas, parseSchema, type SchemaChange } from '../../src/schema/index.js';

const base = `
type Address { city: String }
type Brand @table @export(name: "brands") { id: ID name: String }
type Product @table(expiration: 3600) @export(name: "products") {
  id: ID @primaryKey
  name: String!
  price: Float @indexed
  stock: Int
  tags: [String]
  brandId: ID
  brand: Brand @relationship(from: brandId)
  address: Address
  at: Long
}
`;

/** `base` with `edit` applied: [search, replace] pairs. */
function variant(...edits: ReadonlyArray<readonly [string, string]>): string {
  let sdl = base;
  for (const [search, replace] of edits) {
    if (!sdl.includes(search)) throw new Error(`test setup: "${search}" is not in the base schema`);
    sdl = sdl.replace(search, replace);
  }
  return sdl;
}

function diffOf(...edits: ReadonlyArray<readonly [string, string]>): { additive: SchemaChange[]; breaking: SchemaChange[] } {
  return diffSchemas(parseSchema(base), parseSchema(variant(...edits)));
}

describe('diffSchemas', () => {
  it('finds nothing between equal schemas', () => {
    expect(diffSchemas(parseSchema(base), parseSchema(base))).toEqual({ additive: [], breaking: [] });
  });

  describe('additive changes', () => {
    const cases: ReadonlyArray<readonly [string, ReadonlyArray<readonly [string, string]>, readonly SchemaChange[]]> = [
      ['a new table', [['type Address', 'type Tag @table { id: ID }\ntype Address']], [
        { kind: 'table-added', table: 'Tag', description: 'table Tag is added' },
      ]],
      ['a new optional attribute', [['  at: Long', '  at: Long\n  colour: String']], [
        { kind: 'attribute-added', table: 'Product', attribute: 'colour', description: 'table Product, attribute colour is added (String)' },
      ]],
      ['a new indexed attribute', [['  at: Long', '  at: Long\n  sku: String @indexed']], [
        { kind: 'attribute-added', table: 'Product', attribute: 'sku', description: 'table Product, attribute sku is added (String)' },
        { kind: 'index-added', table: 'Product', attribute: 'sku', description: 'table Product, attribute sku is @indexed; the index is built when the version is prepared' },
      ]],
      ['@indexed on an existing attribute', [['stock: Int', 'stock: Int @indexed']], [
        { kind: 'index-added', table: 'Product', attribute: 'stock', description: 'table Product, attribute stock becomes @indexed; the index is built when the version is prepared' },
      ]],
      ['@indexed removed', [['price: Float @indexed', 'price: Float']], [
        { kind: 'index-removed', table: 'Product', attribute: 'price', description: 'table Product, attribute price is no longer @indexed; its index is dropped and queries on it scan the table' },
      ]],
      ['a new nested type', [['type Address', 'type Geo { lat: Float }\ntype Address']], [
        { kind: 'type-added', table: 'Geo', description: 'nested type Geo is added' },
      ]],
      ['required -> optional', [['name: String!', 'name: String']], [
        { kind: 'attribute-relaxed', table: 'Product', attribute: 'name', description: 'table Product, attribute name accepts null now (String! to String)' },
      ]],
      ['a longer expiration', [['expiration: 3600', 'expiration: 7200']], [
        { kind: 'expiration-changed', table: 'Product', description: 'table Product: expiration changes from 3600 s to 7200 s' },
      ]],
      ['audit turned on', [['@table(expiration: 3600)', '@table(expiration: 3600, audit: true)']], [
        { kind: 'audit-changed', table: 'Product', description: 'table Product: audit is turned on' },
      ]],
      ['an attribute becomes @updatedTime', [['at: Long', 'at: Long @updatedTime']], [
        { kind: 'timestamp-changed', table: 'Product', attribute: 'at', description: 'table Product, attribute at changes from a plain attribute to @updatedTime' },
      ]],
      ['a new optional attribute in a nested type', [['city: String', 'city: String zip: String']], [
        { kind: 'attribute-added', table: 'Address', attribute: 'zip', description: 'nested type Address, attribute zip is added (String)' },
      ]],
    ];
    for (const [what, edits, expected] of cases) {
      it(what, () => {
        expect(diffOf(...edits)).toEqual({ additive: expected, breaking: [] });
      });
    }
  });

  describe('breaking changes', () => {
    const cases: ReadonlyArray<readonly [string, ReadonlyArray<readonly [string, string]>, readonly SchemaChange[]]> = [
      ['a table removed', [['type Brand @table @export(name: "brands") { id: ID name: String }', ''], ['  brand: Brand @relationship(from: brandId)\n', '']], [
        { kind: 'table-removed', table: 'Brand', description: 'table Brand is removed, with all its records' },
        { kind: 'attribute-removed', table: 'Product', attribute: 'brand', description: 'table Product, attribute brand is removed' },
      ]],
      ['an attribute removed', [['  stock: Int\n', '']], [
        { kind: 'attribute-removed', table: 'Product', attribute: 'stock', description: 'table Product, attribute stock is removed' },
      ]],
      ['a type changed', [['stock: Int', 'stock: String']], [
        { kind: 'type-changed', table: 'Product', attribute: 'stock', description: 'table Product, attribute stock: type changes from Int to String' },
      ]],
      ['a scalar becomes a list', [['stock: Int', 'stock: [Int]']], [
        { kind: 'type-changed', table: 'Product', attribute: 'stock', description: 'table Product, attribute stock: type changes from Int to [Int]' },
      ]],
      ['list elements become non-null', [['tags: [String]', 'tags: [String!]']], [
        { kind: 'type-changed', table: 'Product', attribute: 'tags', description: 'table Product, attribute tags: type changes from [String] to [String!]; existing values may contain nulls' },
      ]],
      ['optional -> required', [['stock: Int', 'stock: Int!']], [
        { kind: 'attribute-now-required', table: 'Product', attribute: 'stock', description: 'table Product, attribute stock becomes required (Int to Int!); existing records may lack it' },
      ]],
      ['a new required attribute', [['  at: Long', '  at: Long\n  sku: String!']], [
        { kind: 'required-attribute-added', table: 'Product', attribute: 'sku', description: 'table Product, attribute sku is added as required (String!); existing records lack it' },
      ]],
      ['the primary key changed', [['id: ID @primaryKey', 'id: ID'], ['  at: Long', '  at: Long\n  sku: String @primaryKey']], [
        { kind: 'primary-key-changed', table: 'Product', attribute: 'sku', description: 'table Product: primary key changes from id: ID to sku: String; stored records are keyed by the old one' },
      ]],
      ['the primary key type changed', [['id: ID @primaryKey', 'id: Long @primaryKey']], [
        { kind: 'primary-key-changed', table: 'Product', attribute: 'id', description: 'table Product: primary key changes from id: ID to id: Long; stored records are keyed by the old one' },
        { kind: 'type-changed', table: 'Product', attribute: 'id', description: 'table Product, attribute id: type changes from ID to Long' },
      ]],
      ['the export name changed', [['@export(name: "products")', '@export(name: "items")']], [
        { kind: 'export-name-changed', table: 'Product', description: 'table Product: REST path changes from /products/ to /items/; clients of the old path get 404' },
      ]],
      ['@sealed added', [['@export(name: "products")', '@export(name: "products") @sealed']], [
        { kind: 'sealed-added', table: 'Product', description: 'table Product becomes @sealed; stored records and writes with undeclared attributes are rejected' },
      ]],
      ['@sealed added to a nested type', [['type Address {', 'type Address @sealed {']], [
        { kind: 'sealed-added', table: 'Address', description: 'nested type Address becomes @sealed; stored records and writes with undeclared attributes are rejected' },
      ]],
      ['a shorter expiration', [['expiration: 3600', 'expiration: 60']], [
        { kind: 'expiration-changed', table: 'Product', description: 'table Product: expiration changes from 3600 s to 60 s; existing records may expire sooner' },
      ]],
      ['a stored attribute becomes a relationship', [['  brandId: ID\n  brand: Brand @relationship(from: brandId)', '  brandId: ID\n  brandRef: ID\n  brand: Brand @relationship(from: brandRef)']], [
        { kind: 'relationship-changed', table: 'Product', attribute: 'brand', description: 'table Product, attribute brand changes from @relationship(from: "brandId") to @relationship(from: "brandRef")' },
      ]],
    ];
    for (const [what, edits, expected] of cases) {
      it(what, () => {
        const diff = diffOf(...edits);
        expect(diff.breaking).toEqual(expected);
      });
    }
  });

  it('reports a table that moved from nested type to table as both', () => {
    const prev = parseSchema('type Note { text: String }\ntype T @table { id: ID }');
    const next = parseSchema('type Note @table { id: ID text: String }\ntype T @table { id: ID }');
    expect(diffSchemas(prev, next)).toEqual({
      additive: [
        { kind: 'table-added', table: 'Note', description: 'table Note is added' },
        { kind: 'type-removed', table: 'Note', description: 'nested type Note is removed' },
      ],
      breaking: [],
    });
  });
});
