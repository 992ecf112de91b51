// Raft messages on the wire: each Message is one msgpack-encoded plain object (a field per
// Message field, optional ones left out when absent). Decoding checks every field, because a
// peer's bytes are input, not trusted memory: a malformed message is refused, never stepped.
import { Packr } from 'msgpackr';
import type { ConfState, Entry, EntryType, Message, MessageType, Snapshot } from '../raft/types.js';

export class CodecError extends Error {
  constructor(detail: string) {
    super(`malformed raft message: ${detail}`);
  }
}

// No records/structures: every message decodes on its own, whatever the other side packed before.
const packr = new Packr({ useRecords: false, moreTypes: false });

const messageTypes: ReadonlySet<MessageType> = new Set<MessageType>([
  'hup', 'beat', 'prop', 'app', 'appResp', 'vote', 'voteResp', 'preVote', 'preVoteResp', 'snap',
  'heartbeat', 'heartbeatResp', 'unreachable', 'snapStatus', 'checkQuorum', 'transferLeader',
  'timeoutNow', 'readIndex', 'readIndexResp',
]);
const entryTypes: ReadonlySet<EntryType> = new Set<EntryType>(['normal', 'confChange']);

export function encodeMessage(message: Message): Uint8Array {
  const wire: Record<string, unknown> = {
    type: message.type,
    from: message.from,
    to: message.to,
    term: message.term,
    logTerm: message.logTerm,
    index: message.index,
    entries: message.entries.map((entry) => ({ term: entry.term, index: entry.index, type: entry.type, data: entry.data })),
    commit: message.commit,
    reject: message.reject,
    rejectHint: message.rejectHint,
  };
  if (message.snapshot !== undefined) wire.snapshot = { metadata: message.snapshot.metadata, data: message.snapshot.data };
  if (message.rejectLogTerm !== undefined) wire.rejectLogTerm = message.rejectLogTerm;
  if (message.context !== undefined) wire.context = message.context;
  return packr.pack(wire);
}

export function decodeMessage(bytes: Uint8Array): Message {
  let wire: unknown;
  try {
    wire = packr.unpack(bytes);
  } catch (error) {
    throw new CodecError(error instanceof Error ? error.message : String(error));
  }
  const record = asRecord(wire, 'message');
  const type = record.type;
  if (typeof type !== 'string' || !messageTypes.has(type as MessageType)) throw new CodecError(`unknown type ${String(type)}`);
  const message: {
    -readonly [K in keyof Message]: Message[K];
  } = {
    type: type as MessageType,
    from: asString(record.from, 'from'),
    to: asString(record.to, 'to'),
    term: asIndex(record.term, 'term'),
    logTerm: asIndex(record.logTerm, 'logTerm'),
    index: asIndex(record.index, 'index'),
    entries: asArray(record.entries, 'entries').map(asEntry),
    commit: asIndex(record.commit, 'commit'),
    reject: asBoolean(record.reject, 'reject'),
    rejectHint: asIndex(record.rejectHint, 'rejectHint'),
  };
  if (record.snapshot !== undefined) message.snapshot = asSnapshot(record.snapshot);
  if (record.rejectLogTerm !== undefined) message.rejectLogTerm = asIndex(record.rejectLogTerm, 'rejectLogTerm');
  if (record.context !== undefined) message.context = asBytes(record.context, 'context');
  return message;
}

/** msgpack hands binary back as Node Buffers; the core gets plain Uint8Array views of them
 *  (no copy), the same type it sent, so equality and re-encoding behave alike. */
export function plainBytes(bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function asRecord(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new CodecError(`${field} is not an object`);
  return value as Record<string, unknown>;
}

function asString(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new CodecError(`${field} is not a string`);
  return value;
}

function asIndex(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new CodecError(`${field} is not a non-negative integer`);
  return value;
}

function asBoolean(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') throw new CodecError(`${field} is not a boolean`);
  return value;
}

function asBytes(value: unknown, field: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new CodecError(`${field} is not bytes`);
  return plainBytes(value);
}

function asArray(value: unknown, field: string): unknown[] {
  if (!Array.isArray(value)) throw new CodecError(`${field} is not an array`);
  return value;
}

function asStrings(value: unknown, field: string): string[] {
  return asArray(value, field).map((item) => asString(item, field));
}

function asEntry(value: unknown): Entry {
  const record = asRecord(value, 'entry');
  const type = record.type;
  if (typeof type !== 'string' || !entryTypes.has(type as EntryType)) throw new CodecError(`unknown entry type ${String(type)}`);
  return {
    term: asIndex(record.term, 'entry.term'),
    index: asIndex(record.index, 'entry.index'),
    type: type as EntryType,
    data: asBytes(record.data, 'entry.data'),
  };
}

function asConfState(value: unknown): ConfState {
  const record = asRecord(value, 'confState');
  return {
    voters: asStrings(record.voters, 'confState.voters'),
    learners: asStrings(record.learners, 'confState.learners'),
    votersOutgoing: asStrings(record.votersOutgoing, 'confState.votersOutgoing'),
    learnersNext: asStrings(record.learnersNext, 'confState.learnersNext'),
    autoLeave: asBoolean(record.autoLeave, 'confState.autoLeave'),
  };
}

function asSnapshot(value: unknown): Snapshot {
  const record = asRecord(value, 'snapshot');
  const metadata = asRecord(record.metadata, 'snapshot.metadata');
  return {
    metadata: {
      index: asIndex(metadata.index, 'snapshot.index'),
      term: asIndex(metadata.term, 'snapshot.term'),
      confState: asConfState(metadata.confState),
    },
    data: asBytes(record.data, 'snapshot.data'),
  };
}
