// What the transport did, for metrics and tests. Plain numbers, updated in place by the
// transport's parts and copied out by Transport.counters().
export interface TransportCounters {
  /** Encoded raft message bytes and snapshot data bytes written to peers. */
  bytesSent: number;
  /** Encoded raft message bytes and snapshot data bytes received from peers. */
  bytesReceived: number;
  messagesSent: number;
  /** Raft messages dropped on either side: full queue, peer down or unknown, partition, oversize, malformed. */
  messagesDropped: number;
  /** Peer streams opened again after one failed. */
  reconnects: number;
}

export function zeroCounters(): TransportCounters {
  return { bytesSent: 0, bytesReceived: 0, messagesSent: 0, messagesDropped: 0, reconnects: 0 };
}
