// ConfChange <-> bytes for 'confChange' entries. Deterministic (fixed key order, hex context)
// because every replica must store byte-identical entries and the simulator compares logs.
import type { ConfChange, ConfChangeSingle, ConfChangeType } from './types.js';
import { bytesKey } from './util.js';

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder('utf-8', { fatal: true });

const CONF_CHANGE_TYPES: ReadonlySet<string> = new Set<ConfChangeType>(['addNode', 'addLearner', 'removeNode']);
const TRANSITIONS: ReadonlySet<string> = new Set<ConfChange['transition']>(['auto', 'joint', 'jointAutoLeave']);

export function encodeConfChange(change: ConfChange): Uint8Array {
  const wire = {
    changes: change.changes.map((single) => ({ type: single.type, nodeId: single.nodeId })),
    transition: change.transition,
    context: change.context === undefined ? null : bytesKey(change.context),
  };
  return textEncoder.encode(JSON.stringify(wire));
}

export class ConfChangeDecodeError extends Error {
  constructor(reason: string) {
    super(`cannot decode conf change: ${reason}`);
  }
}

function hexToBytes(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-f]*$/.test(hex)) throw new ConfChangeDecodeError('bad context hex');
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  let parsed: unknown;
  try {
    parsed = JSON.parse(textDecoder.decode(data));
  } catch (error) {
    throw new ConfChangeDecodeError(error instanceof Error ? error.message : 'invalid JSON');
  }
  if (!isRecord(parsed) || !Array.isArray(parsed.changes)) throw new ConfChangeDecodeError('missing changes');
  const transition = parsed.transition;
  if (typeof transition !== 'string' || !TRANSITIONS.has(transition)) {
    throw new ConfChangeDecodeError('bad transition');
  }
  const changes: ConfChangeSingle[] = parsed.changes.map((single: unknown): ConfChangeSingle => {
    if (!isRecord(single) || typeof single.type !== 'string' || !CONF_CHANGE_TYPES.has(single.type)) {
      throw new ConfChangeDecodeError('bad change type');
    }
    if (typeof single.nodeId !== 'string' || single.nodeId === '') throw new ConfChangeDecodeError('bad nodeId');
    return { type: single.type as ConfChangeType, nodeId: single.nodeId };
  });
  const base = { changes, transition: transition as ConfChange['transition'] };
  if (typeof parsed.context === 'string') return { ...base, context: hexToBytes(parsed.context) };
  return base;
}
