// The schema vocabulary every other part uses: what a table is, what an attribute is, and the
// type of a value. Produced once per app version by parseSchema and never mutated afterwards.

export type ScalarName = 'ID' | 'String' | 'Int' | 'Long' | 'Float' | 'Boolean' | 'Date' | 'Any';

export type TypeRef =
  | { readonly kind: 'scalar'; readonly name: ScalarName; readonly required: boolean }
  | { readonly kind: 'list'; readonly of: TypeRef; readonly required: boolean }
  // A nested non-table type, or a table type referenced through @relationship.
  | { readonly kind: 'object'; readonly name: string; readonly required: boolean };

export interface AttributeDef {
  readonly name: string;
  readonly type: TypeRef;
  /** Same as type.required: `!` on the attribute's outermost type. */
  readonly required: boolean;
  /** @indexed. Always false on the primary key, which is the record key itself. */
  readonly indexed: boolean;
  readonly primaryKey: boolean;
  readonly createdTime: boolean;
  readonly updatedTime: boolean;
  /** Present on a computed attribute that resolves records of another table. Such an attribute
   *  is not stored: `from` names an attribute of this table that holds the other record's
   *  primary key (or a list of them), `to` names an attribute of the other table that holds
   *  this record's primary key. Exactly one of the two is set. */
  readonly relationship?: { readonly from?: string; readonly to?: string };
}

export interface TableDef {
  /** GraphQL type name, e.g. "Product". */
  readonly name: string;
  /** REST path segment: @export(name:) or the type name. */
  readonly exportName: string;
  /** Name of the primary key attribute. */
  readonly primaryKey: string;
  readonly primaryKeyType: PrimaryKeyScalarName;
  readonly attributes: readonly AttributeDef[];
  readonly attributesByName: ReadonlyMap<string, AttributeDef>;
  /** Attribute names with @indexed; never includes the primary key. */
  readonly indexed: readonly string[];
  readonly createdTimeAttribute?: string;
  readonly updatedTimeAttribute?: string;
  readonly sealed: boolean;
  /** @table(expiration:), in seconds. */
  readonly expirationSeconds?: number;
  /** @table(audit:). */
  readonly audit: boolean;
}

export interface ObjectTypeDef {
  readonly name: string;
  readonly attributes: readonly AttributeDef[];
  readonly sealed: boolean;
}

export interface SchemaDef {
  /** By GraphQL type name. */
  readonly tables: ReadonlyMap<string, TableDef>;
  /** By exportName (the REST path segment). */
  readonly tablesByExport: ReadonlyMap<string, TableDef>;
  /** Nested (non-table) object types, by name. */
  readonly objectTypes: ReadonlyMap<string, ObjectTypeDef>;
}

/** The scalars a primary key may have: values that order well as LMDB keys and fit a URL. */
export type PrimaryKeyScalarName = Extract<ScalarName, 'ID' | 'String' | 'Int' | 'Long'>;

export const scalarNames: readonly ScalarName[] = ['ID', 'String', 'Int', 'Long', 'Float', 'Boolean', 'Date', 'Any'];
export const primaryKeyScalarNames: readonly PrimaryKeyScalarName[] = ['ID', 'String', 'Int', 'Long'];
/** Scalars that can hold a timestamp in epoch milliseconds (Int cannot: 2^31 ms is 24 days). */
export const timestampScalarNames: readonly ScalarName[] = ['Long', 'Float', 'Date'];

export function isScalarName(name: string): name is ScalarName {
  return (scalarNames as readonly string[]).includes(name);
}

export function isPrimaryKeyScalarName(name: string): name is PrimaryKeyScalarName {
  return (primaryKeyScalarNames as readonly string[]).includes(name);
}

/** Renders a TypeRef in SDL notation, e.g. `[String!]!`, for messages and diffs. */
export function formatTypeRef(type: TypeRef): string {
  const bang = type.required ? '!' : '';
  if (type.kind === 'list') return `[${formatTypeRef(type.of)}]${bang}`;
  return `${type.name}${bang}`;
}
