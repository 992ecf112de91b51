// Compiled record validators: two compiled functions per table (full and patch), built once
// when an app version is loaded, because validation runs on every write. ajv's errors are
// translated into FieldErrors with dotted paths and the schema's type names.

import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { FieldError } from '../model/problem.js';
import { dateKeyword, intMax, intMin, tableJsonSchema, typeAnnotationKeyword, type ValidationMode } from './json-schema.js';
import { isScalarName, type SchemaDef, type TableDef } from './types.js';

/** Checks one record; returns [] when it is valid. 'full' is a PUT or POST body, 'patch' a
 *  PATCH body (only the attributes present are checked). */
export type RecordValidator = (record: unknown, mode: 'full' | 'patch') => FieldError[];

/** A record with thousands of bad attributes needs no more than this many to be understood. */
export const fieldErrorCountMax = 100;

/** ISO-8601 calendar date, optionally with a time, which then needs a zone: a zoneless time
 *  means local time, and replicas in different regions would read it differently. */
const isoDateTimePattern = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2}))?$/i;

/** A Date attribute holds an ISO-8601 string, integer epoch milliseconds, or a Date object
 *  (what CBOR and MessagePack decoders produce for their timestamp types). */
export function isDateValue(value: unknown): boolean {
  if (typeof value === 'number') return Number.isSafeInteger(value);
  if (typeof value === 'string') return isoDateTimePattern.test(value) && !Number.isNaN(Date.parse(value));
  return value instanceof Date && !Number.isNaN(value.getTime());
}

/** One ajv instance per schema version, shared by its tables: an instance costs ~20 ms to set
 *  up, and keyed weakly it goes away with the schema version instead of accumulating every
 *  compiled table of every version ever loaded. */
const ajvBySchema = new WeakMap<SchemaDef, Ajv>();

function ajvFor(schema: SchemaDef): Ajv {
  const existing = ajvBySchema.get(schema);
  if (existing !== undefined) return existing;
  const ajv = new Ajv({
    allErrors: true,
    // verbose puts the failing schema node and value on each error, which the messages need;
    // it costs nothing on the valid path.
    verbose: true,
    messages: false,
    strict: true,
    // Our JSON Schemas are generated, not user-written: strict mode still rejects unknown
    // keywords at compile time, and skipping the meta-schema check saves most of the setup.
    validateSchema: false,
    // Nested type definitions are typeless on purpose (json-schema.ts), and ID is string|integer.
    strictTypes: false,
    allowUnionTypes: true,
    // A JSON body's "__proto__" or "constructor" key must be checked as an attribute, never
    // resolved through the prototype chain.
    ownProperties: true,
  });
  ajv.addKeyword({ keyword: typeAnnotationKeyword, schemaType: 'string' });
  ajv.addKeyword({
    keyword: dateKeyword,
    schemaType: 'boolean',
    validate: (nullable: boolean, value: unknown) => isDateValue(value) || (nullable && value === null),
  });
  ajvBySchema.set(schema, ajv);
  return ajv;
}

/** Compiles the validator of one table; call once per table and schema version and keep it. */
export function compileValidator(schema: SchemaDef, table: TableDef): RecordValidator {
  if (schema.tables.get(table.name) !== table) throw new Error(`assertion: table ${table.name} is not part of the given schema`);
  const ajv = ajvFor(schema);
  const validators: Readonly<Record<ValidationMode, ValidateFunction>> = {
    full: ajv.compile(tableJsonSchema(schema, table, 'full')),
    patch: ajv.compile(tableJsonSchema(schema, table, 'patch')),
  };
  return (record, mode) => {
    const validate = validators[mode];
    if (validate === undefined) throw new Error(`assertion: unknown validation mode ${String(mode)}`);
    if (validate(record)) return [];
    return toFieldErrors(validate.errors ?? []);
  };
}

function toFieldErrors(errors: readonly ErrorObject[]): FieldError[] {
  const fieldErrors: FieldError[] = [];
  const seen = new Set<string>();
  for (const error of errors) {
    if (fieldErrors.length >= fieldErrorCountMax) break;
    const fieldError = toFieldError(error);
    const key = `${fieldError.field}\u0000${fieldError.message}`;
    // One bad value can fail several keywords (type and range); report it once.
    if (seen.has(key)) continue;
    seen.add(key);
    fieldErrors.push(fieldError);
  }
  return fieldErrors;
}

function toFieldError(error: ErrorObject): FieldError {
  const path = pathOf(error.instancePath);
  const annotation = annotationOf(error.parentSchema);
  switch (error.keyword) {
    case 'required':
      return { field: joinPath(path, String(error.params.missingProperty)), message: 'is required' };
    case 'additionalProperties': {
      const owner = path === '' ? 'table' : `type ${annotation ?? 'object'}`;
      return { field: joinPath(path, String(error.params.additionalProperty)), message: `unknown attribute (${owner} is @sealed)` };
    }
    case 'false schema':
      return { field: path, message: 'is a @relationship attribute, computed when read; it cannot be written' };
    default:
      if (error.data === null && path !== '') return { field: path, message: 'must not be null' };
      return { field: path, message: typeMessage(annotation, error.keyword, path) };
  }
}

/** "must be Int", with the range or format spelled out where the name alone could surprise. */
function typeMessage(annotation: string | undefined, keyword: string, path: string): string {
  if (annotation === undefined) return path === '' ? 'must be an object' : 'is invalid';
  if (annotation.startsWith('[')) return `must be a list (${annotation})`;
  if (!isScalarName(annotation)) return path === '' ? `must be an object (a record of ${annotation})` : `must be an object (${annotation})`;
  const isRange = keyword === 'minimum' || keyword === 'maximum';
  switch (annotation) {
    case 'Int':
      return isRange ? `must be Int (a 32-bit signed integer, ${intMin} to ${intMax})` : 'must be Int';
    case 'Long':
      return isRange ? 'must be Long (a safe integer, at most 2^53-1 in magnitude)' : 'must be Long';
    case 'ID':
      return isRange ? 'must be ID (a string or a safe integer)' : 'must be ID (a string or an integer)';
    case 'Date':
      return 'must be Date (ISO-8601 date or date-time with zone, or integer epoch milliseconds)';
    default:
      return `must be ${annotation}`;
  }
}

function annotationOf(schemaNode: unknown): string | undefined {
  if (typeof schemaNode !== 'object' || schemaNode === null) return undefined;
  const annotation: unknown = (schemaNode as Record<string, unknown>)[typeAnnotationKeyword];
  return typeof annotation === 'string' ? annotation : undefined;
}

/** JSON Pointer "/address/city" or "/tags/2" -> "address.city" or "tags.2". */
function pathOf(instancePath: string): string {
  if (instancePath === '') return '';
  return instancePath.slice(1).split('/').map((segment) => segment.replace(/~1/g, '/').replace(/~0/g, '~')).join('.');
}

function joinPath(path: string, name: string): string {
  return path === '' ? name : `${path}.${name}`;
}
