// How app log entries travel inside Raft entries. A Raft entry's data is a Proposal: the app
// entry plus the key of the node and request that proposed it, so the proposer can match the
// committed entry to its waiting request. Empty data is a new leader's empty entry.
import { Packr } from 'msgpackr';
import type { LogEntry } from '../state/entries.js';

export interface ProposalEnvelope {
  /** "<nodeId>:<sequence>", unique per proposal attempt; absent for system entries. */
  readonly key: string;
  readonly entry: LogEntry;
}

// Plain msgpack (no shared record structures): entries are read by other nodes and other
// versions, so they must decode without any out-of-band state.
const packr = new Packr({ useRecords: false, moreTypes: false });

export function encodeProposal(envelope: ProposalEnvelope): Uint8Array {
  return packr.pack(envelope);
}

export function decodeProposal(data: Uint8Array): ProposalEnvelope {
  const decoded = packr.unpack(data) as ProposalEnvelope;
  if (typeof decoded !== 'object' || decoded === null || typeof decoded.entry?.kind !== 'string') {
    throw new Error('raft entry does not hold a Lockstep proposal');
  }
  return decoded;
}
