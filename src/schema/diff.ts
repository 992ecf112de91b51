// What changes between two schema versions, split into what existing data and clients survive
// (additive) and what they may not (breaking). A deploy with breaking changes needs an explicit
// flag (DESIGN.md, two-phase version switch), so when in doubt a change is breaking.

import { formatTypeRef, type AttributeDef, type ObjectTypeDef, type SchemaDef, type TableDef, type TypeRef } from './types.js';

export type SchemaChangeKind =
  | 'table-added' | 'table-removed'
  | 'type-added' | 'type-removed'
  | 'primary-key-changed' | 'export-name-changed'
  | 'sealed-added' | 'sealed-removed'
  | 'expiration-changed' | 'audit-changed'
  | 'attribute-added' | 'required-attribute-added' | 'attribute-removed'
  | 'type-changed' | 'attribute-now-required' | 'attribute-relaxed'
  | 'index-added' | 'index-removed'
  | 'timestamp-changed' | 'relationship-changed';

export interface SchemaChange {
  readonly kind: SchemaChangeKind;
  /** The table, or for a nested type's changes the nested type's name. */
  readonly table: string;
  readonly attribute?: string;
  readonly description: string;
}

export interface SchemaDiff {
  additive: SchemaChange[];
  breaking: SchemaChange[];
}

export function diffSchemas(prev: SchemaDef, next: SchemaDef): SchemaDiff {
  const diff: SchemaDiff = { additive: [], breaking: [] };
  for (const [name, prevTable] of prev.tables) {
    const nextTable = next.tables.get(name);
    if (nextTable === undefined) {
      diff.breaking.push({ kind: 'table-removed', table: name, description: `table ${name} is removed, with all its records` });
    } else {
      diffTables(prevTable, nextTable, diff);
    }
  }
  for (const name of next.tables.keys()) {
    if (!prev.tables.has(name)) diff.additive.push({ kind: 'table-added', table: name, description: `table ${name} is added` });
  }
  for (const [name, prevType] of prev.objectTypes) {
    const nextType = next.objectTypes.get(name);
    // Nothing in `next` can reference a removed type, and every attribute that did is itself
    // reported as changed or removed, so the removal alone breaks nothing.
    if (nextType === undefined) diff.additive.push({ kind: 'type-removed', table: name, description: `nested type ${name} is removed` });
    else diffAttributeSets(`nested type ${name}`, name, prevType, nextType, diff);
  }
  for (const name of next.objectTypes.keys()) {
    if (!prev.objectTypes.has(name)) diff.additive.push({ kind: 'type-added', table: name, description: `nested type ${name} is added` });
  }
  return diff;
}

function diffTables(prev: TableDef, next: TableDef, diff: SchemaDiff): void {
  const table = next.name;
  if (prev.primaryKey !== next.primaryKey || prev.primaryKeyType !== next.primaryKeyType) {
    diff.breaking.push({
      kind: 'primary-key-changed', table, attribute: next.primaryKey,
      description: `table ${table}: primary key changes from ${prev.primaryKey}: ${prev.primaryKeyType} to ${next.primaryKey}: ${next.primaryKeyType}; stored records are keyed by the old one`,
    });
  }
  if (prev.exportName !== next.exportName) {
    diff.breaking.push({
      kind: 'export-name-changed', table,
      description: `table ${table}: REST path changes from /${prev.exportName}/ to /${next.exportName}/; clients of the old path get 404`,
    });
  }
  if (prev.expirationSeconds !== next.expirationSeconds) {
    const before = prev.expirationSeconds === undefined ? 'none' : `${prev.expirationSeconds} s`;
    const after = next.expirationSeconds === undefined ? 'none' : `${next.expirationSeconds} s`;
    // Records that would have lived on may now expire at once: that loses data.
    const shortens = next.expirationSeconds !== undefined && (prev.expirationSeconds === undefined || next.expirationSeconds < prev.expirationSeconds);
    (shortens ? diff.breaking : diff.additive).push({
      kind: 'expiration-changed', table,
      description: `table ${table}: expiration changes from ${before} to ${after}${shortens ? '; existing records may expire sooner' : ''}`,
    });
  }
  if (prev.audit !== next.audit) {
    diff.additive.push({ kind: 'audit-changed', table, description: `table ${table}: audit is turned ${next.audit ? 'on' : 'off'}` });
  }
  diffAttributeSets(`table ${table}`, table, prev, next, diff);
}

interface AttributeSet {
  readonly attributes: readonly AttributeDef[];
  readonly sealed: boolean;
}

/** Shared by tables and nested types: the same change means the same for both. */
function diffAttributeSets(label: string, table: string, prev: AttributeSet | ObjectTypeDef, next: AttributeSet | ObjectTypeDef, diff: SchemaDiff): void {
  if (!prev.sealed && next.sealed) {
    diff.breaking.push({ kind: 'sealed-added', table, description: `${label} becomes @sealed; stored records and writes with undeclared attributes are rejected` });
  } else if (prev.sealed && !next.sealed) {
    diff.additive.push({ kind: 'sealed-removed', table, description: `${label} is no longer @sealed; undeclared attributes are accepted` });
  }
  const nextByName = new Map(next.attributes.map((attribute) => [attribute.name, attribute]));
  const prevByName = new Map(prev.attributes.map((attribute) => [attribute.name, attribute]));
  for (const before of prev.attributes) {
    const after = nextByName.get(before.name);
    const where = `${label}, attribute ${before.name}`;
    if (after === undefined) {
      diff.breaking.push({ kind: 'attribute-removed', table, attribute: before.name, description: `${where} is removed` });
    } else {
      diffAttributes(where, table, before, after, diff);
    }
  }
  for (const after of next.attributes) {
    if (prevByName.has(after.name)) continue;
    const where = `${label}, attribute ${after.name}`;
    // Records stored before have no value for a new required attribute, so they stop being
    // valid; a relationship is computed, so it never lacks a value.
    if (after.required && after.relationship === undefined) {
      diff.breaking.push({ kind: 'required-attribute-added', table, attribute: after.name, description: `${where} is added as required (${formatTypeRef(after.type)}); existing records lack it` });
    } else {
      diff.additive.push({ kind: 'attribute-added', table, attribute: after.name, description: `${where} is added (${formatTypeRef(after.type)})` });
    }
    if (after.indexed) {
      diff.additive.push({ kind: 'index-added', table, attribute: after.name, description: `${where} is @indexed; the index is built when the version is prepared` });
    }
  }
}

function diffAttributes(where: string, table: string, before: AttributeDef, after: AttributeDef, diff: SchemaDiff): void {
  const attribute = after.name;
  const typeChange = compareTypes(before.type, after.type);
  const types = `${formatTypeRef(before.type)} to ${formatTypeRef(after.type)}`;
  if (typeChange === 'changed') {
    diff.breaking.push({ kind: 'type-changed', table, attribute, description: `${where}: type changes from ${types}` });
  } else if (typeChange === 'tightened') {
    const onlyTopLevel = compareTypes(before.type, withRequired(after.type, before.type.required)) === 'same';
    diff.breaking.push(onlyTopLevel
      ? { kind: 'attribute-now-required', table, attribute, description: `${where} becomes required (${types}); existing records may lack it` }
      : { kind: 'type-changed', table, attribute, description: `${where}: type changes from ${types}; existing values may contain nulls` });
  } else if (typeChange === 'relaxed') {
    diff.additive.push({ kind: 'attribute-relaxed', table, attribute, description: `${where} accepts null now (${types})` });
  }
  if (!before.indexed && after.indexed) {
    diff.additive.push({ kind: 'index-added', table, attribute, description: `${where} becomes @indexed; the index is built when the version is prepared` });
  } else if (before.indexed && !after.indexed) {
    diff.additive.push({ kind: 'index-removed', table, attribute, description: `${where} is no longer @indexed; its index is dropped and queries on it scan the table` });
  }
  if (before.createdTime !== after.createdTime || before.updatedTime !== after.updatedTime) {
    const role = (definition: AttributeDef): string => definition.createdTime ? '@createdTime' : definition.updatedTime ? '@updatedTime' : 'a plain attribute';
    diff.additive.push({ kind: 'timestamp-changed', table, attribute, description: `${where} changes from ${role(before)} to ${role(after)}` });
  }
  const relationship = (definition: AttributeDef): string => definition.relationship === undefined
    ? 'stored'
    : definition.relationship.from !== undefined ? `@relationship(from: "${definition.relationship.from}")` : `@relationship(to: "${definition.relationship.to ?? ''}")`;
  if (relationship(before) !== relationship(after)) {
    // Stored <-> computed changes what is kept and what a client may write; a different key
    // attribute changes which records a read returns.
    diff.breaking.push({ kind: 'relationship-changed', table, attribute, description: `${where} changes from ${relationship(before)} to ${relationship(after)}` });
  }
}

function withRequired(type: TypeRef, required: boolean): TypeRef {
  return type.kind === 'list' ? { kind: 'list', of: type.of, required } : { ...type, required };
}

type TypeComparison = 'same' | 'relaxed' | 'tightened' | 'changed';

/** Same shape and names, compared level by level for `!`: dropping one relaxes, adding one
 *  tightens, both at different levels counts as tightened (some old value may now fail). */
function compareTypes(prev: TypeRef, next: TypeRef): TypeComparison {
  let inner: TypeComparison;
  if (prev.kind === 'list' && next.kind === 'list') {
    inner = compareTypes(prev.of, next.of);
  } else if (prev.kind !== 'list' && next.kind !== 'list' && prev.kind === next.kind && prev.name === next.name) {
    inner = 'same';
  } else {
    return 'changed';
  }
  if (inner === 'changed') return 'changed';
  const here: TypeComparison = prev.required === next.required ? 'same' : prev.required ? 'relaxed' : 'tightened';
  if (here === 'same') return inner;
  if (inner === 'same' || inner === here) return here;
  return 'tightened';
}
