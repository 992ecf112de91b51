// One GraphQL object type -> a TableDef (with @table) or an ObjectTypeDef (a nested type), with
// the rules that concern a whole type: exactly one primary key, at most one @createdTime and
// one @updatedTime, table options and the export name.

import type { FieldDefinitionNode, ObjectTypeDefinitionNode } from 'graphql';
import { buildAttribute } from './attributes.js';
import { booleanArgument, findDirective, intArgument, stringArgument } from './directives.js';
import type { ProblemList } from './problems.js';
import {
  formatTypeRef,
  isPrimaryKeyScalarName,
  primaryKeyScalarNames,
  type AttributeDef,
  type ObjectTypeDef,
  type PrimaryKeyScalarName,
  type TableDef,
} from './types.js';

/** The attribute that becomes the primary key when none is marked @primaryKey, as in Harper. */
export const defaultPrimaryKeyName = 'id';
/** Export names become one URL path segment: unreserved characters only, so they need no
 *  escaping, and no leading underscore, which node endpoints (/_health) use. */
const exportNamePattern = /^[A-Za-z0-9][A-Za-z0-9_.~-]*$/;
export const exportNameLengthMax = 128;

/** Built definitions plus the AST node of each attribute, for later cross-table checks. */
export interface BuiltType<Def> {
  readonly def: Def;
  readonly node: ObjectTypeDefinitionNode;
  readonly fieldNodes: ReadonlyMap<string, FieldDefinitionNode>;
}

export function buildObjectType(node: ObjectTypeDefinitionNode, tableNames: ReadonlySet<string>, problems: ProblemList): BuiltType<ObjectTypeDef> {
  const name = node.name.value;
  const fields = node.fields ?? [];
  const attributes = fields.map((field) =>
    buildAttribute(field, { ownerName: name, ownerIsTable: false, isPrimaryKey: false, tableNames }, problems));
  const def: ObjectTypeDef = Object.freeze({ name, attributes: Object.freeze(attributes), sealed: findDirective(node, 'sealed') !== undefined });
  return { def, node, fieldNodes: fieldNodesByName(fields) };
}

export function buildTable(node: ObjectTypeDefinitionNode, tableNames: ReadonlySet<string>, problems: ProblemList): BuiltType<TableDef> | undefined {
  const name = node.name.value;
  const fields = node.fields ?? [];
  const primaryKeyField = choosePrimaryKey(node, problems);
  const attributes = fields.map((field) =>
    buildAttribute(field, { ownerName: name, ownerIsTable: true, isPrimaryKey: field === primaryKeyField, tableNames }, problems));
  const primaryKey = attributes.find((attribute) => attribute.primaryKey);
  const primaryKeyType = primaryKey === undefined ? undefined : checkPrimaryKey(name, primaryKey, primaryKeyField, problems);

  const createdTimeAttribute = singleFlagged(name, attributes, fields, 'createdTime', problems);
  const updatedTimeAttribute = singleFlagged(name, attributes, fields, 'updatedTime', problems);

  const tableDirective = findDirective(node, 'table');
  if (tableDirective === undefined) throw new Error(`assertion: buildTable called for ${name}, which has no @table`);
  const expirationSeconds = intArgument(tableDirective, 'expiration');
  if (expirationSeconds !== undefined && expirationSeconds <= 0) {
    problems.add(tableDirective, `${name}: @table(expiration:) must be a positive number of seconds, not ${expirationSeconds}`);
  }
  const exportDirective = findDirective(node, 'export');
  const exportName = (exportDirective === undefined ? undefined : stringArgument(exportDirective, 'name')) ?? name;
  if (!exportNamePattern.test(exportName) || exportName.length > exportNameLengthMax) {
    problems.add(exportDirective ?? node.name, `${name}: export name "${exportName}" must be 1-${exportNameLengthMax} letters, digits, "_", ".", "~" or "-", not starting with "_", ".", "~" or "-"`);
  }

  if (primaryKey === undefined || primaryKeyType === undefined) return undefined;
  const def: TableDef = Object.freeze({
    name,
    exportName,
    primaryKey: primaryKey.name,
    primaryKeyType,
    attributes: Object.freeze(attributes),
    attributesByName: new Map(attributes.map((attribute) => [attribute.name, attribute])),
    indexed: Object.freeze(attributes.filter((attribute) => attribute.indexed).map((attribute) => attribute.name)),
    ...(createdTimeAttribute === undefined ? {} : { createdTimeAttribute }),
    ...(updatedTimeAttribute === undefined ? {} : { updatedTimeAttribute }),
    sealed: findDirective(node, 'sealed') !== undefined,
    ...(expirationSeconds === undefined || expirationSeconds <= 0 ? {} : { expirationSeconds }),
    audit: booleanArgument(tableDirective, 'audit') ?? false,
  });
  return { def, node, fieldNodes: fieldNodesByName(fields) };
}

function fieldNodesByName(fields: readonly FieldDefinitionNode[]): ReadonlyMap<string, FieldDefinitionNode> {
  return new Map(fields.map((field) => [field.name.value, field]));
}

/** The field marked @primaryKey, else the one named `id`; reports zero or several. */
function choosePrimaryKey(node: ObjectTypeDefinitionNode, problems: ProblemList): FieldDefinitionNode | undefined {
  const name = node.name.value;
  const fields = node.fields ?? [];
  const marked = fields.filter((field) => findDirective(field, 'primaryKey') !== undefined);
  for (const extra of marked.slice(1)) {
    problems.add(findDirective(extra, 'primaryKey'), `${name}: only one attribute may be @primaryKey (already ${marked[0]?.name.value})`);
  }
  if (marked.length > 0) return marked[0];
  const byDefault = fields.find((field) => field.name.value === defaultPrimaryKeyName);
  if (byDefault === undefined) {
    problems.add(node.name, `${name}: a @table needs a primary key: mark one attribute @primaryKey or declare ${defaultPrimaryKeyName}: ID`);
  }
  return byDefault;
}

function checkPrimaryKey(tableName: string, attribute: AttributeDef, field: FieldDefinitionNode | undefined, problems: ProblemList): PrimaryKeyScalarName | undefined {
  const label = `${tableName}.${attribute.name}`;
  const type = attribute.type;
  if (type.kind !== 'scalar' || !isPrimaryKeyScalarName(type.name)) {
    problems.add(field?.type, `${label}: a primary key must be ${primaryKeyScalarNames.join(', ')}, not ${formatTypeRef(type)}`);
    return undefined;
  }
  const primaryKeyType = type.name;
  if (attribute.createdTime || attribute.updatedTime) {
    problems.add(field, `${label}: the primary key cannot be a @createdTime or @updatedTime attribute`);
  }
  return primaryKeyType;
}

function singleFlagged(
  tableName: string,
  attributes: readonly AttributeDef[],
  fields: readonly FieldDefinitionNode[],
  flag: 'createdTime' | 'updatedTime',
  problems: ProblemList,
): string | undefined {
  const flagged = attributes.filter((attribute) => attribute[flag]);
  for (const extra of flagged.slice(1)) {
    const field = fields.find((candidate) => candidate.name.value === extra.name);
    problems.add(field === undefined ? undefined : findDirective(field, flag), `${tableName}: only one attribute may be @${flag} (already ${flagged[0]?.name})`);
  }
  return flagged[0]?.name;
}
