// The replicated state machine under test: a key-value map fed by committed raft entries.
// Commands carry (clientId, seq) so that a proposal appended twice (a duplicated forwarded
// proposal, say) takes effect once, as a real session layer would ensure.

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

interface SerializedState {
  readonly values: [string, string][];
  readonly lastSeqByClient: [number, number][];
}

export class KvStateMachine {
  private readonly values = new Map<string, string>();
  /** Highest seq applied per client: a command at or below it is a duplicate. */
  private readonly lastSeqByClient = new Map<number, number>();

  read(key: string): KvValue {
    return this.values.get(key) ?? null;
  }

  /** Apply a command; returns undefined for a duplicate (it has no effect and no reply). */
  apply(command: KvCommand): KvOutput | undefined {
    const lastSeq = this.lastSeqByClient.get(command.clientId) ?? 0;
    if (command.seq <= lastSeq) return undefined;
    this.lastSeqByClient.set(command.clientId, command.seq);
    const input = command.input;
    if (input.type === 'write') {
      this.values.set(input.key, input.value);
      return { type: 'write' };
    }
    const ok = this.read(input.key) === input.expected;
    if (ok) this.values.set(input.key, input.value);
    return { type: 'cas', ok };
  }

  serialize(): Uint8Array {
    const state: SerializedState = {
      values: [...this.values.entries()],
      lastSeqByClient: [...this.lastSeqByClient.entries()],
    };
    return encoder.encode(JSON.stringify(state));
  }

  static restore(data: Uint8Array): KvStateMachine {
    const machine = new KvStateMachine();
    if (data.length === 0) return machine;
    const state = JSON.parse(decoder.decode(data)) as SerializedState;
    for (const [key, value] of state.values) machine.values.set(key, value);
    for (const [clientId, seq] of state.lastSeqByClient) machine.lastSeqByClient.set(clientId, seq);
    return machine;
  }
}
