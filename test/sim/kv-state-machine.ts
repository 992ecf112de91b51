// The replicated state machine under test: a key-value map fed by committed raft entries.
// Commands carry (clientId, seq) so that a proposal appended twice (a duplicated forwarded
// proposal, a client's retry after an unknown outcome) takes effect once, as a real session
// layer would ensure. Where the maps live is the caller's choice (kv-replicated-machine.ts keeps
// them in tables of the simulated disk).

import type { EntryCodec } from '../../src/group/types.js';
import type { KvInput, KvOutput, KvValue } from '../../src/testing/linearizability/index.js';

export interface KvCommand {
  readonly clientId: number;
  readonly seq: number;
  /** Reads go through ReadIndex and are never proposed. */
  readonly input: Exclude<KvInput, { type: 'read' }>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(command: KvCommand): Uint8Array {
  return encoder.encode(JSON.stringify(command));
}

export function decodeCommand(data: Uint8Array): KvCommand {
  return JSON.parse(decoder.decode(data)) as KvCommand;
}

export const kvCommandCodec: EntryCodec<KvCommand> = { encode: encodeCommand, decode: decodeCommand };

/** The two operations the model needs from a map. */
export interface KeyValueMap<K, V> {
  get(key: K): V | undefined;
  set(key: K, value: V): void;
}

export interface KvMaps {
  readonly values: KeyValueMap<string, string>;
  /** Highest seq applied per client: a command at or below it is a duplicate. */
  readonly lastSeqByClient: KeyValueMap<number, number>;
}

export class KvStateMachine {
  constructor(private readonly maps: KvMaps = { values: new Map(), lastSeqByClient: new Map() }) {}

  read(key: string): KvValue {
    return this.maps.values.get(key) ?? null;
  }

  /** Apply a command; returns undefined for a duplicate (it has no effect and no reply). */
  apply(command: KvCommand): KvOutput | undefined {
    const lastSeq = this.maps.lastSeqByClient.get(command.clientId) ?? 0;
    if (command.seq <= lastSeq) return undefined;
    this.maps.lastSeqByClient.set(command.clientId, command.seq);
    const input = command.input;
    if (input.type === 'write') {
      this.maps.values.set(input.key, input.value);
      return { type: 'write' };
    }
    const ok = this.read(input.key) === input.expected;
    if (ok) this.maps.values.set(input.key, input.value);
    return { type: 'cas', ok };
  }
}
