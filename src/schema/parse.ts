// GraphQL SDL -> SchemaDef. graphql's parser reads the text and graphql's own rules check it
// against our prelude (unknown types, directives, argument types, duplicates); then we walk the
// AST for the rules that are ours. Every problem found is reported at once, as "line:col: msg".

import {
  GraphQLError,
  Kind,
  parse,
  Source,
  validate,
  type ConstDirectiveNode,
  type DefinitionNode,
  type DocumentNode,
  type FieldDefinitionNode,
  type ObjectTypeDefinitionNode,
} from 'graphql';
import { builtInDirectiveNames, builtInScalarNamesDeclarable, preludeSchema, sdlRules } from './prelude.js';
import { ProblemList } from './problems.js';
import { checkRelationships } from './relationships.js';
import { buildObjectType, buildTable, type BuiltType } from './tables.js';
import type { ObjectTypeDef, SchemaDef, TableDef } from './types.js';

/** A schema is a human-written file; anything larger is a mistake or an attack. */
export const schemaBytesMax = 1024 * 1024;
/** Bounds graphql's parser work independently of the byte size (e.g. a run of punctuation). */
export const schemaTokensMax = 200_000;

export class SchemaError extends Error {
  /** Each "line:col: message", in document order. */
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    if (problems.length === 0) throw new Error('assertion: a SchemaError needs at least one problem');
    super(`invalid schema:\n${problems.join('\n')}`);
    this.name = 'SchemaError';
    this.problems = Object.freeze([...problems]);
  }
}

export function parseSchema(sdl: string): SchemaDef {
  const source = new Source(sdl, 'schema.graphql');
  const problems = new ProblemList(source);
  if (Buffer.byteLength(sdl, 'utf8') > schemaBytesMax) {
    problems.add(undefined, `schema is larger than ${schemaBytesMax} bytes`);
    throw new SchemaError(problems.toStrings());
  }

  let document: DocumentNode;
  try {
    document = parse(source, { maxTokens: schemaTokensMax });
  } catch (error) {
    if (!(error instanceof GraphQLError)) throw error;
    problems.addGraphQLError(error);
    throw new SchemaError(problems.toStrings());
  }

  const typeNodes = selectObjectTypes(document, problems);
  for (const error of validate(preludeSchema, { kind: Kind.DOCUMENT, definitions: typeNodes }, sdlRules)) {
    problems.addGraphQLError(error);
  }
  // Our own rules assume a document graphql accepts (known types, well-typed arguments).
  if (!problems.isEmpty) throw new SchemaError(problems.toStrings());

  const schema = buildSchemaDef(typeNodes, problems);
  if (!problems.isEmpty || schema === undefined) throw new SchemaError(problems.toStrings());
  return schema;
}

/** Keeps the object type definitions; rejects every other kind of definition. Redeclarations
 *  of our own directives and scalars (some schemas carry them for editor support) are dropped:
 *  the prelude's meaning wins. */
function selectObjectTypes(document: DocumentNode, problems: ProblemList): ObjectTypeDefinitionNode[] {
  const typeNodes: ObjectTypeDefinitionNode[] = [];
  for (const definition of document.definitions) {
    if (definition.kind === Kind.OBJECT_TYPE_DEFINITION) {
      if (definition.name.value.startsWith('__')) {
        problems.add(definition.name, `${definition.name.value}: names starting with "__" are reserved`);
      }
      if (definition.interfaces !== undefined && definition.interfaces.length > 0) {
        problems.add(definition.interfaces[0], `${definition.name.value}: interfaces are not supported`);
      }
      // Without its (rejected) interfaces, so graphql does not also call them unknown types.
      typeNodes.push(withBareRelationshipNamesQuoted({ ...definition, interfaces: [] }));
    } else if (definition.kind === Kind.DIRECTIVE_DEFINITION && builtInDirectiveNames.has(definition.name.value)) {
      continue;
    } else if (definition.kind === Kind.SCALAR_TYPE_DEFINITION && builtInScalarNamesDeclarable.has(definition.name.value)) {
      continue;
    } else {
      problems.add(definition, unsupportedDefinitionMessage(definition));
    }
  }
  return typeNodes;
}

function unsupportedDefinitionMessage(definition: DefinitionNode): string {
  switch (definition.kind) {
    case Kind.SCALAR_TYPE_DEFINITION:
      return `custom scalar ${definition.name.value} is not supported; use ID, String, Int, Long, Float, Boolean, Date or Any`;
    case Kind.DIRECTIVE_DEFINITION:
      return `custom directive @${definition.name.value} is not supported`;
    case Kind.OBJECT_TYPE_EXTENSION:
      return `extend type ${definition.name.value} is not supported; declare all attributes in one type`;
    default:
      return `${definition.kind} is not supported in a schema; only object types (type X { ... }) are`;
  }
}

/** Harper writes @relationship(from: brandId) with a bare name, which GraphQL reads as an enum
 *  value; we accept it as the string it means so that Harper schemas parse unchanged. */
function withBareRelationshipNamesQuoted(node: ObjectTypeDefinitionNode): ObjectTypeDefinitionNode {
  const hasBareName = (directive: ConstDirectiveNode): boolean =>
    directive.name.value === 'relationship' && (directive.arguments ?? []).some((argument) => argument.value.kind === Kind.ENUM);
  const fields = node.fields ?? [];
  if (!fields.some((field) => (field.directives ?? []).some(hasBareName))) return node;
  const quoteField = (field: FieldDefinitionNode): FieldDefinitionNode => ({
    ...field,
    directives: (field.directives ?? []).map((directive) => !hasBareName(directive) ? directive : {
      ...directive,
      arguments: (directive.arguments ?? []).map((argument) => argument.value.kind !== Kind.ENUM ? argument : {
        ...argument,
        value: { kind: Kind.STRING, value: argument.value.value, ...(argument.value.loc === undefined ? {} : { loc: argument.value.loc }) },
      }),
    }),
  });
  return { ...node, fields: fields.map(quoteField) };
}

function buildSchemaDef(typeNodes: readonly ObjectTypeDefinitionNode[], problems: ProblemList): SchemaDef | undefined {
  const isTable = (node: ObjectTypeDefinitionNode): boolean => node.directives?.some((directive) => directive.name.value === 'table') ?? false;
  const tableNames = new Set(typeNodes.filter(isTable).map((node) => node.name.value));
  const builtTables = new Map<string, BuiltType<TableDef>>();
  const objectTypes = new Map<string, ObjectTypeDef>();
  let complete = true;

  for (const node of typeNodes) {
    if (isTable(node)) {
      const built = buildTable(node, tableNames, problems);
      if (built === undefined) complete = false;
      else builtTables.set(built.def.name, built);
    } else {
      const exportDirective = node.directives?.find((directive) => directive.name.value === 'export');
      if (exportDirective !== undefined) {
        problems.add(exportDirective, `${node.name.value}: @export needs @table; a nested type has no REST path`);
      }
      const built = buildObjectType(node, tableNames, problems);
      objectTypes.set(built.def.name, built.def);
    }
  }
  checkRelationships(builtTables, problems);

  const tablesByExport = new Map<string, TableDef>();
  for (const { def, node } of builtTables.values()) {
    const other = tablesByExport.get(def.exportName);
    if (other !== undefined) {
      const exportDirective = node.directives?.find((directive) => directive.name.value === 'export');
      problems.add(exportDirective ?? node.name, `${def.name}: export name "${def.exportName}" is already used by table ${other.name}`);
      continue;
    }
    tablesByExport.set(def.exportName, def);
  }
  if (!complete) return undefined;
  const tables = new Map([...builtTables].map(([name, built]) => [name, built.def]));
  return Object.freeze({ tables, tablesByExport, objectTypes });
}
