// TableDef -> the JSON Schema its records are validated against. Each node carries an `lsType`
// annotation (the Lockstep type in SDL notation) so that validate.ts can turn ajv's errors into
// messages in the schema's own vocabulary ("must be Int", not "must be integer").

import type { SchemaObject } from 'ajv';
import { formatTypeRef, type AttributeDef, type ObjectTypeDef, type SchemaDef, type TableDef, type TypeRef } from './types.js';

export type ValidationMode = 'full' | 'patch';

/** Annotation keywords we add to ajv; see validate.ts. */
export const typeAnnotationKeyword = 'lsType';
export const dateKeyword = 'lsDate';

export const intMin = -(2 ** 31);
export const intMax = 2 ** 31 - 1;

/** The JSON Schema for one table's records. 'full' (PUT, POST) requires the required attributes
 *  the client supplies; 'patch' checks only what is present. */
export function tableJsonSchema(schema: SchemaDef, table: TableDef, mode: ValidationMode): SchemaObject {
  const defs: Record<string, SchemaObject> = {};
  collectObjectDefs(schema, table.attributes, defs);
  const root = objectJsonSchema(table.name, table.attributes, table.sealed);
  if (mode === 'full') {
    // The router fills the primary key from the path or generates it, and the state machine
    // stamps @createdTime and @updatedTime, so a client need not send them.
    const required = table.attributes
      .filter((attribute) => isClientRequired(attribute) && !attribute.primaryKey && !attribute.createdTime && !attribute.updatedTime)
      .map((attribute) => attribute.name);
    if (required.length > 0) root.required = required;
  }
  return { ...root, type: 'object', $defs: defs };
}

/** The `$defs` name of a nested type. */
function defName(typeName: string): string {
  return `type_${typeName}`;
}

/** A relationship attribute is computed, never stored, so `!` on it does not ask for a value. */
function isClientRequired(attribute: AttributeDef): boolean {
  return attribute.required && attribute.relationship === undefined;
}

function objectJsonSchema(typeName: string, attributes: readonly AttributeDef[], sealed: boolean): SchemaObject {
  const properties: Record<string, SchemaObject | boolean> = {};
  for (const attribute of attributes) {
    // `false` rejects any value; validate.ts reports it as a write to a computed attribute.
    properties[attribute.name] = attribute.relationship === undefined ? typeJsonSchema(attribute.type) : false;
  }
  return { [typeAnnotationKeyword]: typeName, properties, additionalProperties: !sealed };
}

/** Adds a `$defs` entry for every nested type reachable from `attributes`, once each, which
 *  also terminates on recursive types (type Node { children: [Node] }). */
function collectObjectDefs(schema: SchemaDef, attributes: readonly AttributeDef[], defs: Record<string, SchemaObject>): void {
  for (const attribute of attributes) {
    if (attribute.relationship !== undefined) continue;
    let type: TypeRef = attribute.type;
    while (type.kind === 'list') type = type.of;
    if (type.kind !== 'object' || defs[defName(type.name)] !== undefined) continue;
    const objectType: ObjectTypeDef | undefined = schema.objectTypes.get(type.name);
    if (objectType === undefined) throw new Error(`assertion: attribute ${attribute.name} references unknown nested type ${type.name}`);
    // Typeless on purpose: the referencing node says whether null is allowed.
    const def = objectJsonSchema(objectType.name, objectType.attributes, objectType.sealed);
    const required = objectType.attributes.filter(isClientRequired).map((nested) => nested.name);
    if (required.length > 0) def.required = required;
    defs[defName(type.name)] = def;
    collectObjectDefs(schema, objectType.attributes, defs);
  }
}

function typeJsonSchema(type: TypeRef): SchemaObject {
  const nullable = !type.required;
  const annotation = { [typeAnnotationKeyword]: formatTypeRef({ ...type, required: false }) };
  const types = (...names: string[]): string | string[] => {
    const all = nullable ? [...names, 'null'] : names;
    return all.length === 1 && all[0] !== undefined ? all[0] : all;
  };
  switch (type.kind) {
    case 'list':
      return { ...annotation, type: types('array'), items: typeJsonSchema(type.of) };
    case 'object':
      return { ...annotation, type: types('object'), $ref: `#/$defs/${defName(type.name)}` };
    case 'scalar':
      switch (type.name) {
        case 'ID':
          return { ...annotation, type: types('string', 'integer'), minimum: Number.MIN_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER };
        case 'String':
          return { ...annotation, type: types('string') };
        case 'Int':
          return { ...annotation, type: types('integer'), minimum: intMin, maximum: intMax };
        case 'Long':
          return { ...annotation, type: types('integer'), minimum: Number.MIN_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER };
        case 'Float':
          // ajv's number type already excludes NaN and the infinities.
          return { ...annotation, type: types('number') };
        case 'Boolean':
          return { ...annotation, type: types('boolean') };
        case 'Date':
          return { ...annotation, [dateKeyword]: nullable };
        case 'Any':
          return nullable ? { ...annotation } : { ...annotation, not: { type: 'null' } };
      }
  }
}
