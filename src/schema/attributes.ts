// One GraphQL field definition -> one AttributeDef: its type, its directives, and the rules that
// concern the attribute alone. Rules that need the whole table (one primary key, one
// @createdTime) or other tables (@relationship targets) live in tables.ts and relationships.ts.

import { Kind, type FieldDefinitionNode, type TypeNode } from 'graphql';
import { findDirective, stringArgument } from './directives.js';
import type { ProblemList } from './problems.js';
import { formatTypeRef, isScalarName, timestampScalarNames, type AttributeDef, type TypeRef } from './types.js';

/** Directives that only make sense on a stored table's attributes. */
const tableOnlyDirectiveNames = ['primaryKey', 'indexed', 'createdTime', 'updatedTime', 'relationship'] as const;

export interface AttributeContext {
  /** Name of the type that declares the field, for messages. */
  readonly ownerName: string;
  readonly ownerIsTable: boolean;
  readonly isPrimaryKey: boolean;
  readonly tableNames: ReadonlySet<string>;
}

export function typeRefOf(node: TypeNode, required = false): TypeRef {
  switch (node.kind) {
    case Kind.NON_NULL_TYPE:
      return typeRefOf(node.type, true);
    case Kind.LIST_TYPE:
      return { kind: 'list', of: typeRefOf(node.type), required };
    case Kind.NAMED_TYPE: {
      const name = node.name.value;
      return isScalarName(name) ? { kind: 'scalar', name, required } : { kind: 'object', name, required };
    }
  }
}

/** The scalar or object type at the bottom of any list nesting. */
export function innermostType(type: TypeRef): Exclude<TypeRef, { kind: 'list' }> {
  return type.kind === 'list' ? innermostType(type.of) : type;
}

export function buildAttribute(field: FieldDefinitionNode, context: AttributeContext, problems: ProblemList): AttributeDef {
  const name = field.name.value;
  const label = `${context.ownerName}.${name}`;
  const type = typeRefOf(field.type);
  const innermost = innermostType(type);
  const referencesTable = innermost.kind === 'object' && context.tableNames.has(innermost.name);

  if (name.startsWith('__')) {
    // GraphQL reserves the prefix, and "__proto__" would be an attack on every plain object
    // that a record passes through.
    problems.add(field.name, `${label}: names starting with "__" are reserved`);
  }
  if (field.arguments !== undefined && field.arguments.length > 0) {
    problems.add(field.arguments[0], `${label}: attributes cannot take arguments`);
  }
  if (!context.ownerIsTable) {
    for (const directiveName of tableOnlyDirectiveNames) {
      const directive = findDirective(field, directiveName);
      if (directive !== undefined) {
        problems.add(directive, `${label}: @${directiveName} is only allowed on attributes of a @table type (${context.ownerName} is a nested type)`);
      }
    }
  }

  const relationshipDirective = findDirective(field, 'relationship');
  let relationship: AttributeDef['relationship'];
  if (relationshipDirective !== undefined) {
    const from = stringArgument(relationshipDirective, 'from');
    const to = stringArgument(relationshipDirective, 'to');
    if ((from === undefined) === (to === undefined)) {
      problems.add(relationshipDirective, `${label}: @relationship needs exactly one of from: or to:`);
    }
    relationship = Object.freeze({ ...(from === undefined ? {} : { from }), ...(to === undefined ? {} : { to }) });
    if (!referencesTable) {
      problems.add(field.type, `${label}: @relationship needs a @table type or a list of one, not ${formatTypeRef(type)}`);
    } else if (type.kind === 'list' && type.of.kind === 'list') {
      problems.add(field.type, `${label}: @relationship resolves to a record or a list of records, not ${formatTypeRef(type)}`);
    }
  } else if (referencesTable) {
    // Embedding another table's records would store a second, unsynchronised copy of them.
    const how = context.ownerIsTable ? 'with @relationship(from:) or @relationship(to:)' : 'only from a table attribute with @relationship';
    problems.add(field.type, `${label}: ${innermost.name} is a @table type; reference it ${how}`);
  }

  const indexed = findDirective(field, 'indexed') !== undefined;
  const createdTime = findDirective(field, 'createdTime') !== undefined;
  const updatedTime = findDirective(field, 'updatedTime') !== undefined;

  if (indexed && context.ownerIsTable && relationshipDirective === undefined) {
    // Index keys are one scalar per record. Indexing each element of a list is possible but
    // storage would have to know about it; we keep one key per record and say so here.
    if (type.kind !== 'scalar' || type.name === 'Any') {
      problems.add(findDirective(field, 'indexed'), `${label}: @indexed is supported on scalar attributes other than Any, not on ${formatTypeRef(type)}`);
    }
  }
  for (const [directiveName, present] of [['createdTime', createdTime], ['updatedTime', updatedTime]] as const) {
    if (!present || !context.ownerIsTable) continue;
    if (type.kind !== 'scalar' || !timestampScalarNames.includes(type.name)) {
      problems.add(findDirective(field, directiveName), `${label}: @${directiveName} needs Long, Float or Date (epoch milliseconds), not ${formatTypeRef(type)}`);
    }
  }
  if (createdTime && updatedTime) {
    problems.add(findDirective(field, 'updatedTime'), `${label}: an attribute cannot be both @createdTime and @updatedTime`);
  }
  if (relationshipDirective !== undefined && context.ownerIsTable) {
    // A relationship attribute is computed when read and never stored, so it has no value to
    // index, key or stamp.
    for (const directiveName of ['primaryKey', 'indexed', 'createdTime', 'updatedTime'] as const) {
      const directive = findDirective(field, directiveName);
      if (directive !== undefined) problems.add(directive, `${label}: a @relationship attribute is computed, not stored; it cannot be @${directiveName}`);
    }
  }

  return Object.freeze({
    name,
    type,
    required: type.required,
    // The primary key is the record's key in LMDB, so a secondary index on it would be a copy.
    indexed: indexed && !context.isPrimaryKey,
    primaryKey: context.isPrimaryKey,
    createdTime,
    updatedTime,
    ...(relationship === undefined ? {} : { relationship }),
  });
}
