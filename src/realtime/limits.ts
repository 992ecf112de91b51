// Every bound of the real-time layer, with its unit. One object so the host can pass a single
// `Partial<HubLimits>` to both the hub (subscriber and replay bounds) and the transports (buffers,
// heartbeats); each part reads only the fields it needs.

export interface HubLimits {
  /** Subscribers one hub (one app) accepts; more are refused with 503 / WS close 1013. */
  readonly subscribersMax: number;
  /** Bytes queued for one subscriber but not yet handed to the kernel; above it the subscriber is
   *  disconnected as too slow. */
  readonly bufferBytesMax: number;
  /** Messages queued for one subscriber but not yet handed to the kernel; same rule as bytes. */
  readonly bufferMessagesMax: number;
  /** Replay is paced: the hub hands a replaying subscriber at most this many events at a time and
   *  waits for its buffer to drain below half of the limits before the next chunk. */
  readonly replayChunkEventsMax: number;
  /** SSE comment line interval, so proxies keep the stream open and dead clients are noticed. */
  readonly sseHeartbeatMs: number;
  /** WebSocket ping interval; a peer that has not answered the previous ping is terminated. */
  readonly wsPingIntervalMs: number;
  /** After a close frame or final SSE error event, how long the peer gets to read it before the
   *  socket is destroyed (a slow peer may never read it; its buffer must not live forever). */
  readonly closeGraceMs: number;
  /** Clients do not send data; anything larger than this is a protocol error (ws closes 1009). */
  readonly wsPayloadBytesMax: number;
}

export const defaultHubLimits: HubLimits = {
  subscribersMax: 10_000,
  bufferBytesMax: 1024 * 1024,
  bufferMessagesMax: 4096,
  replayChunkEventsMax: 512,
  sseHeartbeatMs: 15_000,
  wsPingIntervalMs: 30_000,
  closeGraceMs: 5_000,
  wsPayloadBytesMax: 1024,
};

export function resolveHubLimits(overrides: Partial<HubLimits> = {}): HubLimits {
  const limits: HubLimits = { ...defaultHubLimits, ...stripUndefined(overrides) };
  for (const [name, value] of Object.entries(limits)) {
    // A zero or fractional bound is a configuration mistake that would silently disable a guard.
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new RangeError(`HubLimits.${name} must be a positive integer, got ${String(value)}`);
    }
  }
  return limits;
}

function stripUndefined(overrides: Partial<HubLimits>): Partial<HubLimits> {
  return Object.fromEntries(Object.entries(overrides).filter(([, value]) => value !== undefined));
}
