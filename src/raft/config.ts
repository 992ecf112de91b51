// Defaults and validation for RaftConfig.
import type { NodeId, RaftConfig, Storage } from './types.js';
import { NONE } from './types.js';

export class RaftConfigError extends Error {
  constructor(reason: string) {
    super(`invalid raft config: ${reason}`);
  }
}

const MEBIBYTE = 1024 * 1024;

/** Election timeout base: with 100 ms ticks, 1-2 s before a follower campaigns. */
export const ELECTION_TICKS_DEFAULT = 10;
export const HEARTBEAT_TICKS_DEFAULT = 1;
export const MAX_SIZE_PER_MSG_BYTES_DEFAULT = 1 * MEBIBYTE;
export const MAX_INFLIGHT_MSGS_DEFAULT = 256;
export const MAX_INFLIGHT_BYTES_DEFAULT = 32 * MEBIBYTE;
export const MAX_UNCOMMITTED_ENTRIES_SIZE_BYTES_DEFAULT = 64 * MEBIBYTE;
export const MAX_COMMITTED_SIZE_PER_READY_BYTES_DEFAULT = 64 * MEBIBYTE;

/** A production-shaped config: PreVote and CheckQuorum on, bounded pipelines and batches. */
export function defaultRaftConfig(id: NodeId, storage: Storage, random: () => number): RaftConfig {
  return {
    id,
    electionTicks: ELECTION_TICKS_DEFAULT,
    heartbeatTicks: HEARTBEAT_TICKS_DEFAULT,
    storage,
    applied: 0,
    maxSizePerMsgBytes: MAX_SIZE_PER_MSG_BYTES_DEFAULT,
    maxInflightMsgs: MAX_INFLIGHT_MSGS_DEFAULT,
    maxInflightBytes: MAX_INFLIGHT_BYTES_DEFAULT,
    maxUncommittedEntriesSizeBytes: MAX_UNCOMMITTED_ENTRIES_SIZE_BYTES_DEFAULT,
    maxCommittedSizePerReadyBytes: MAX_COMMITTED_SIZE_PER_READY_BYTES_DEFAULT,
    checkQuorum: true,
    preVote: true,
    random,
    disableProposalForwarding: false,
  };
}

export function validateRaftConfig(config: RaftConfig): void {
  if (config.id === NONE) throw new RaftConfigError('id must not be empty');
  if (!Number.isInteger(config.heartbeatTicks) || config.heartbeatTicks <= 0) {
    throw new RaftConfigError('heartbeatTicks must be a positive integer');
  }
  if (!Number.isInteger(config.electionTicks) || config.electionTicks <= config.heartbeatTicks) {
    throw new RaftConfigError('electionTicks must be an integer greater than heartbeatTicks');
  }
  if (!Number.isInteger(config.maxInflightMsgs) || config.maxInflightMsgs <= 0) {
    throw new RaftConfigError('maxInflightMsgs must be a positive integer');
  }
  if (config.maxInflightBytes !== 0 && config.maxInflightBytes < config.maxSizePerMsgBytes) {
    throw new RaftConfigError('maxInflightBytes must be 0 or at least maxSizePerMsgBytes');
  }
  if (config.maxSizePerMsgBytes < 0 || config.maxUncommittedEntriesSizeBytes < 0) {
    throw new RaftConfigError('byte bounds must not be negative');
  }
  if (config.maxCommittedSizePerReadyBytes <= 0) {
    throw new RaftConfigError('maxCommittedSizePerReadyBytes must be positive');
  }
  if (config.applied < 0) throw new RaftConfigError('applied must not be negative');
}
