// The wire text of every real-time message. Both transports send the same JSON text, so a client
// library parses one format whether it came over WebSocket or SSE.

import type { ChangeEvent } from '../model/change-event.js';

/** Serialized once per event in ChangeHub.publish and shared by every recipient. Field order is
 *  fixed (type, table, id, value, index, version) so messages are stable for golden tests. */
export function encodeChangeEvent(event: ChangeEvent): string {
  return JSON.stringify({
    type: event.type,
    table: event.table,
    id: event.id,
    value: event.value,
    index: event.index,
    version: event.version,
  });
}

/** The retained window no longer reaches back to the requested index: events between the resume
 *  point and `oldestIndex` are lost; the stream continues live after `current`. */
export function encodeReset(oldestIndex: number, current: number): string {
  return JSON.stringify({ type: 'reset', index: oldestIndex, current });
}

/** Last message before the server ends a stream on its own (SSE `event: error`). */
export function encodeError(reason: string): string {
  return JSON.stringify({ type: 'error', reason });
}
