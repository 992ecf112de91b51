// A key-value register per key: read, write, compare-and-set. Keys are independent, so the
// history is partitioned by key and each register is checked on its own.

import { checkOperations, type CheckOptions, type CheckResult } from './check.js';
import { ILLEGAL, UNKNOWN, type Illegal, type Model, type Operation, type Unknown } from './model.js';

/** A register's value; null when the key was never written. */
export type KvValue = string | null;

export type KvInput =
  | { readonly type: 'read'; readonly key: string }
  | { readonly type: 'write'; readonly key: string; readonly value: string }
  | { readonly type: 'cas'; readonly key: string; readonly expected: KvValue; readonly value: string };

export type KvOutput =
  | { readonly type: 'read'; readonly value: KvValue }
  | { readonly type: 'write' }
  | { readonly type: 'cas'; readonly ok: boolean };

export type KvOperation = Operation<KvInput, KvOutput>;

function kvStep(state: KvValue, input: KvInput, output: KvOutput | Unknown): KvValue | Illegal {
  if (output !== UNKNOWN && output.type !== input.type) {
    throw new Error(`operation ${input.type} on ${input.key} has a ${output.type} output`);
  }
  switch (input.type) {
    case 'read':
      if (output === UNKNOWN) return state;
      return (output as { value: KvValue }).value === state ? state : ILLEGAL;
    case 'write':
      return input.value;
    case 'cas': {
      const matches = state === input.expected;
      if (output === UNKNOWN) return matches ? input.value : state;
      const ok = (output as { ok: boolean }).ok;
      if (ok !== matches) return ILLEGAL;
      return ok ? input.value : state;
    }
  }
}

function hashString(value: KvValue): number {
  if (value === null) return 0x6e756c6c;
  // FNV-1a: cheap and good enough for memo buckets.
  let hash = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    hash = Math.imul(hash ^ value.charCodeAt(i), 0x01000193);
  }
  return hash >>> 0;
}

function describeKv(operation: KvOperation): string {
  const { input, output } = operation;
  const when =
    output === UNKNOWN
      ? `[${operation.callTime}, ?)`
      : `[${operation.callTime}, ${operation.returnTime}]`;
  const client = `client ${String(operation.clientId)}`;
  const result = (): string => {
    if (output === UNKNOWN) return 'unknown';
    if (output.type === 'read') return JSON.stringify(output.value);
    if (output.type === 'cas') return String(output.ok);
    return 'ok';
  };
  switch (input.type) {
    case 'read':
      return `${client} read(${input.key}) -> ${result()} ${when}`;
    case 'write':
      return `${client} write(${input.key}, ${JSON.stringify(input.value)}) -> ${result()} ${when}`;
    case 'cas':
      return (
        `${client} cas(${input.key}, ${JSON.stringify(input.expected)}, ` +
        `${JSON.stringify(input.value)}) -> ${result()} ${when}`
      );
  }
}

export const kvModel: Model<KvValue, KvInput, KvOutput> = {
  init: () => null,
  step: kvStep,
  equal: (a, b) => a === b,
  hash: hashString,
  isReadOnly(input, output) {
    if (output === UNKNOWN) return false;
    return input.type === 'read' || (output.type === 'cas' && !output.ok);
  },
  partition(operations) {
    const byKey = new Map<string, KvOperation[]>();
    for (const operation of operations) {
      // A read whose answer never arrived constrains nothing and changes nothing; dropping it
      // shrinks the search (every unknown operation stays concurrent with all later ones).
      if (operation.input.type === 'read' && operation.output === UNKNOWN) continue;
      const part = byKey.get(operation.input.key);
      if (part === undefined) byKey.set(operation.input.key, [operation]);
      else part.push(operation);
    }
    return byKey;
  },
  describe: describeKv,
};

/** Is this key-value history linearizable? */
export function checkKv(
  history: readonly KvOperation[],
  options: CheckOptions = {},
): CheckResult<KvInput, KvOutput> {
  return checkOperations(kvModel, history, options);
}
