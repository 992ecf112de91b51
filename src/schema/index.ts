// The schema module: GraphQL SDL -> table definitions, compiled record validators and the diff
// between two schema versions.

export * from './types.js';
export { parseSchema, SchemaError, schemaBytesMax } from './parse.js';
export { compileValidator, type RecordValidator } from './validate.js';
export { diffSchemas, type SchemaChange, type SchemaDiff } from './diff.js';
