// Lockstep's client: `import { connect, where } from 'lockstep/client'`. No dependencies: it
// runs on Node 20 and in browsers (global fetch, AbortSignal, crypto).
export { connect, Client, Table, type Answer, type CallOptions, type ConnectOptions, type Consistency } from './client.js';
export { where, Query, Condition } from './query.js';
export type { ChangeMessage, ResetInfo, SubscribeOptions, SubscriptionHandle, WebSocketClass, WebSocketLike } from './subscription.js';
export * from './errors.js';
