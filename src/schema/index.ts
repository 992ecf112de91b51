// The schema module: GraphQL SDL -> table definitions, compiled record validators and the diff
// between two schema versions.
//
// Decisions a user of the module should know:
// - Primary key: the attribute marked @primaryKey, else the one named `id` (as Harper does);
//   a table with neither, or with two marked, is rejected. It must be ID, String, Int or Long.
//   @indexed on the primary key is accepted and ignored: the key is the record's LMDB key.
// - @indexed is supported on scalar attributes except Any. Lists, nested objects and Any are
//   rejected rather than indexed element by element, because storage keeps one index key per
//   record and attribute.
// - @createdTime / @updatedTime need Long, Float or Date (Int cannot hold epoch milliseconds).
// - @relationship(from:) / (to:) take a quoted or a bare attribute name (Harper writes them
//   bare). A relationship attribute is computed, never stored: validators reject a value for
//   it, and storage should skip it. A table type may be referenced only through @relationship.
// - Date accepts an ISO-8601 date, a date-time with a zone (a zoneless time would be read in
//   each replica's local time), integer epoch milliseconds, or a Date object (CBOR, msgpack).
// - Only object types are allowed; enums, interfaces, unions, inputs and custom scalars or
//   directives are rejected. Redeclaring our own directives or Long/Date/Any is tolerated and
//   ignored.
// - Diff: adding @sealed, shortening or introducing an expiration, and any relationship change
//   are breaking; removing @indexed or @sealed is additive (and the description says so).

export * from './types.js';
export { parseSchema, SchemaError, schemaBytesMax } from './parse.js';
export { compileValidator, fieldErrorCountMax, isDateValue, type RecordValidator } from './validate.js';
export { diffSchemas, type SchemaChange, type SchemaChangeKind, type SchemaDiff } from './diff.js';
