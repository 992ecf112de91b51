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

/** The WebSocket subprotocol of Lockstep's own clients: the server selects it when offered and
 *  then starts the stream with a `subscribed` message. */
export const lockstepProtocol = 'lockstep';

/** First message to a WebSocket client that selected the `lockstep` subprotocol: the stream
 *  holds every event with index > `index`. A browser cannot read the upgrade's headers, so this
 *  is how it learns where a live subscription starts, and can resume from there without a gap. */
export function encodeSubscribed(index: number): string {
  return JSON.stringify({ type: 'subscribed', index });
}

/** Last message before the server ends a stream on its own (SSE `event: error`). */
export function encodeError(reason: string): string {
  return JSON.stringify({ type: 'error', reason });
}
