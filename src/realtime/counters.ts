// Plain numbers the host turns into Prometheus metrics (src/observability/). Kept free of
// prom-client so the real-time layer stays testable without a registry.

export interface RealtimeCounters {
  /** Gauge: open WebSocket and SSE subscriptions. */
  readonly subscriptions: number;
  readonly subscriptionsTotal: number;
  readonly messagesSent: number;
  readonly bytesSent: number;
  /** Subscribers disconnected because their send buffer limit was exceeded. */
  readonly slowDisconnects: number;
  /** WebSocket peers terminated for not answering a ping. */
  readonly deadPeerTerminations: number;
  /** Upgrade or SSE requests answered with an HTTP error (bad since, unknown path, full hub). */
  readonly rejectedRequests: number;
  /** Highest number of bytes any one subscriber had buffered; stays near bufferBytesMax. */
  readonly bufferedBytesPeak: number;
}

export type MutableCounters = { -readonly [K in keyof RealtimeCounters]: RealtimeCounters[K] };

export function emptyCounters(): MutableCounters {
  return {
    subscriptions: 0,
    subscriptionsTotal: 0,
    messagesSent: 0,
    bytesSent: 0,
    slowDisconnects: 0,
    deadPeerTerminations: 0,
    rejectedRequests: 0,
    bufferedBytesPeak: 0,
  };
}
