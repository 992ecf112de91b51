// The public API of the consensus core. Everything else in src/raft/ is internal.
export * from './types.js';
export { RawNode, LocalMessageError } from './raw-node.js';
export { MemoryStorage, BOOTSTRAP_INDEX, BOOTSTRAP_TERM, SnapshotOutOfDateError, confStateOf, emptyConfState } from './memory-storage.js';
export { encodeConfChange, decodeConfChange, ConfChangeDecodeError } from './codec.js';
export {
  defaultRaftConfig,
  validateRaftConfig,
  RaftConfigError,
  ELECTION_TICKS_DEFAULT,
  HEARTBEAT_TICKS_DEFAULT,
  MAX_SIZE_PER_MSG_BYTES_DEFAULT,
  MAX_INFLIGHT_MSGS_DEFAULT,
  MAX_INFLIGHT_BYTES_DEFAULT,
  MAX_UNCOMMITTED_ENTRIES_SIZE_BYTES_DEFAULT,
  MAX_COMMITTED_SIZE_PER_READY_BYTES_DEFAULT,
} from './config.js';
export { ConfChangeError } from './confchange.js';
export { RaftInvariantError } from './util.js';
export { isLocalMessage, isResponseMessage } from './messages.js';
