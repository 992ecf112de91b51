import { describe, expect, it } from 'vitest';
import { parseSchema, type TableDef } from '../../src/schema/index.js';

// A realistic shop: several tables, nested types (one recursive, one sealed), lists, every
// directive, and Harper's bare-name @relationship arguments.
export const shopSdl = `
type Address @sealed {
  street: String!
  city: String!
  zip: String
  geo: Geo
}
type Geo { lat: Float! lon: Float! }
type Category { name: String! children: [Category!] }

type Brand @table @export(name: "brands") {
  id: ID @primaryKey
  name: String! @indexed
  products: [Product] @relationship(to: brandId)
}

type Product @table(expiration: 86400, audit: true) @export(name: "products") @sealed {
  sku: String! @primaryKey
  name: String!
  price: Float! @indexed
  stock: Int @indexed
  views: Long
  brandId: ID @indexed
  brand: Brand @relationship(from: "brandId")
  tagIds: [ID!]
  tags: [Tag] @relationship(from: tagIds)
  dimensions: [[Float!]]
  category: Category
  attributes: Any
  releasedOn: Date
  active: Boolean!
  createdAt: Date @createdTime
  updatedAt: Long @updatedTime
}

type Tag @table { id: ID! name: String }

type Customer @table {
  id: Long! @primaryKey
  email: String! @indexed
  address: Address
  shipping: [Address!]!
  registered: Float @createdTime
}
`;

function table(name: string): TableDef {
  const found = parseSchema(shopSdl).tables.get(name);
  if (found === undefined) throw new Error(`expected table ${name}`);
  return found;
}

describe('parseSchema on a realistic schema', () => {
  it('finds the tables, their export names and the nested types', () => {
    const schema = parseSchema(shopSdl);
    expect([...schema.tables.keys()]).toEqual(['Brand', 'Product', 'Tag', 'Customer']);
    expect([...schema.tablesByExport.keys()]).toEqual(['brands', 'products', 'Tag', 'Customer']);
    expect(schema.tablesByExport.get('products')).toBe(schema.tables.get('Product'));
    expect([...schema.objectTypes.keys()]).toEqual(['Address', 'Geo', 'Category']);
    expect(schema.objectTypes.get('Address')?.sealed).toBe(true);
    expect(schema.objectTypes.get('Geo')?.sealed).toBe(false);
    expect(schema.objectTypes.get('Category')?.attributes[1]?.type).toEqual({
      kind: 'list', required: false, of: { kind: 'object', name: 'Category', required: true },
    });
  });

  it('reads table options, keys, indexes and timestamps', () => {
    const product = table('Product');
    expect(product).toMatchObject({
      name: 'Product', exportName: 'products', primaryKey: 'sku', primaryKeyType: 'String',
      indexed: ['price', 'stock', 'brandId'], createdTimeAttribute: 'createdAt', updatedTimeAttribute: 'updatedAt',
      sealed: true, expirationSeconds: 86400, audit: true,
    });
    expect(product.attributesByName.get('sku')).toMatchObject({ primaryKey: true, required: true, indexed: false });
    expect(product.attributesByName.get('createdAt')).toMatchObject({ createdTime: true, updatedTime: false, type: { kind: 'scalar', name: 'Date', required: false } });
    expect(product.attributes.map((attribute) => attribute.name)).toContain('dimensions');
    expect(product.attributesByName.get('dimensions')?.type).toEqual({
      kind: 'list', required: false, of: { kind: 'list', required: false, of: { kind: 'scalar', name: 'Float', required: true } },
    });
    const customer = table('Customer');
    expect(customer).toMatchObject({ primaryKey: 'id', primaryKeyType: 'Long', exportName: 'Customer', sealed: false, audit: false, createdTimeAttribute: 'registered' });
    expect(customer.expirationSeconds).toBeUndefined();
    expect(customer.updatedTimeAttribute).toBeUndefined();
    expect(customer.attributesByName.get('shipping')?.type).toEqual({
      kind: 'list', required: true, of: { kind: 'object', name: 'Address', required: true },
    });
  });

  it('defaults the primary key to an attribute named id', () => {
    const tag = table('Tag');
    expect(tag.primaryKey).toBe('id');
    expect(tag.primaryKeyType).toBe('ID');
    expect(tag.attributesByName.get('id')?.primaryKey).toBe(true);
  });

  it('reads relationships with quoted and bare attribute names', () => {
    expect(table('Product').attributesByName.get('brand')?.relationship).toEqual({ from: 'brandId' });
    expect(table('Product').attributesByName.get('tags')?.relationship).toEqual({ from: 'tagIds' });
    expect(table('Brand').attributesByName.get('products')).toMatchObject({
      relationship: { to: 'brandId' }, type: { kind: 'list', of: { kind: 'object', name: 'Product' } },
    });
  });

  it('accepts redeclarations of the built-in directives and scalars', () => {
    const schema = parseSchema(`
      directive @table(expiration: Int) on OBJECT
      scalar Long
      type Counter @table { id: ID! n: Long }
    `);
    expect(schema.tables.get('Counter')?.attributesByName.get('n')?.type).toEqual({ kind: 'scalar', name: 'Long', required: false });
  });

  it('parses a Harper-style schema: bare @export, descriptions and comments', () => {
    const schema = parseSchema(`
      # Dogs of the shelter
      """A dog that lives here"""
      type Dog @table @export {
        id: ID @primaryKey
        "what we call it"
        name: String
        breed: String @indexed
        age: Int
        ownerId: ID @indexed
        owner: Owner @relationship(from: ownerId)
      }
      type Owner @table @export { id: ID @primaryKey name: String dogs: [Dog] @relationship(to: ownerId) }
    `);
    expect(schema.tablesByExport.get('Dog')?.indexed).toEqual(['breed', 'ownerId']);
    expect(schema.tablesByExport.get('Owner')?.attributesByName.get('dogs')?.relationship).toEqual({ to: 'ownerId' });
  });

  it('treats an explicit null directive argument as absent', () => {
    const schema = parseSchema('type T @table(expiration: null) @export(name: null) { id: ID }');
    expect(schema.tables.get('T')).toMatchObject({ exportName: 'T', audit: false });
    expect(schema.tables.get('T')?.expirationSeconds).toBeUndefined();
  });

  it('does not index the primary key twice', () => {
    const schema = parseSchema('type T @table { id: ID @primaryKey @indexed, n: Int @indexed }');
    expect(schema.tables.get('T')?.indexed).toEqual(['n']);
  });

  it('returns frozen definitions', () => {
    const product = table('Product');
    expect(Object.isFrozen(product)).toBe(true);
    expect(Object.isFrozen(product.attributes)).toBe(true);
    expect(Object.isFrozen(product.attributes[0])).toBe(true);
  });
});
