// The linearizability checker: Wing-Gong-Lowe search with memoization and partitioning.
export { UNKNOWN, ILLEGAL } from './model.js';
export type { ClientId, Operation, Model, Unknown, Illegal } from './model.js';
export { checkOperations, checkTimeoutMsDefault, checkStepsMaxDefault } from './check.js';
export type { CheckOptions, CheckResult } from './check.js';
export { checkKv, kvModel } from './kv-model.js';
export type { KvInput, KvOutput, KvOperation, KvValue } from './kv-model.js';
