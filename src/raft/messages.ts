// Building and classifying messages. Messages are immutable values: a forwarded message is a
// new object, never an edited one.
import type { Message, MessageType, NodeId, Term } from './types.js';
import { EMPTY_ENTRIES } from './util.js';

/** The context of a vote request sent because of a leader transfer (TimeoutNow): such a
 *  campaign must not be ignored by voters that still believe in the current leader. */
export const CAMPAIGN_TRANSFER_CONTEXT: Uint8Array = new TextEncoder().encode('campaignTransfer');

export type MessageInit = Partial<Message> & { readonly type: MessageType; readonly to: NodeId };

/** Builds a message with every field present (optional ones as undefined), so that all
 *  messages share one object shape: this is the hottest allocation of the core. */
export function buildMessage(init: MessageInit, from: NodeId, term: Term): Message {
  return {
    type: init.type,
    from,
    to: init.to,
    term,
    logTerm: init.logTerm ?? 0,
    index: init.index ?? 0,
    entries: init.entries ?? EMPTY_ENTRIES,
    commit: init.commit ?? 0,
    snapshot: init.snapshot,
    reject: init.reject ?? false,
    rejectHint: init.rejectHint ?? 0,
    rejectLogTerm: init.rejectLogTerm,
    context: init.context,
  };
}

const LOCAL_TYPES: ReadonlySet<MessageType> = new Set<MessageType>(['hup', 'beat', 'unreachable', 'snapStatus', 'checkQuorum']);
const RESPONSE_TYPES: ReadonlySet<MessageType> = new Set<MessageType>([
  'appResp',
  'voteResp',
  'heartbeatResp',
  'unreachable',
  'readIndexResp',
  'preVoteResp',
]);

/** Messages a node generates for itself; the host must never step one in from the network. */
export function isLocalMessage(type: MessageType): boolean {
  return LOCAL_TYPES.has(type);
}

export function isResponseMessage(type: MessageType): boolean {
  return RESPONSE_TYPES.has(type);
}

export function voteResponseType(type: 'vote' | 'preVote'): 'voteResp' | 'preVoteResp' {
  return type === 'vote' ? 'voteResp' : 'preVoteResp';
}
