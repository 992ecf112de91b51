// Every bound of the node-to-node transport, with its unit. A change here is a change to what
// a slow or dead peer may cost this node.

/** gRPC max send/receive message length, set on both server and clients (grpc's defaults
 *  differ per side and per version, so they are pinned here). */
export const grpcMessageBytesMax = 16 * 1024 * 1024;
/** A RaftBatch is closed before it grows past this, well below grpcMessageBytesMax. */
export const batchBytesMax = 4 * 1024 * 1024;
/** One encoded raft message; larger ones are dropped (raft's maxSizePerMsgBytes keeps real
 *  appends far smaller). Leaves room for the batch framing under grpcMessageBytesMax. */
export const raftMessageBytesMax = 12 * 1024 * 1024;
/** Batch bytes handed to gRPC for one peer and not yet taken by its HTTP/2 stream. Without
 *  this bound grpc-js would buffer whatever we write to a peer that does not read. */
export const streamBytesInFlightMax = 2 * batchBytesMax;
/** Messages waiting for one peer; past this the oldest are dropped (raft retransmits). */
export const peerQueueMessagesMax = 10_000;
/** Encoded bytes waiting for one peer. */
export const peerQueueBytesMax = 64 * 1024 * 1024;

/**
 * Reconnecting to a peer: the delay between two connection attempts of its channel (gRPC's own
 * backoff) and between two openings of its raft stream grows exponentially from min to max,
 * with ±jitter. The max bounds how long a peer that is back can go unnoticed: the leader reaches
 * a restarted follower at most about reconnectDelayMsMax × (1 + jitter) after its gRPC server
 * is up (it was 5 s, and followers waited that long to be caught up).
 *
 * Why so low a bound is safe, with no reconnect storm: each node has one channel per peer, so a
 * node that comes back receives at most one connection per peer, not a crowd of clients; while
 * a peer is down, each channel makes one connection attempt per delay (at most 1000 /
 * (reconnectDelayMsMax × (1 - jitter)) ≈ 5 a second once backed off, each a SYN answered by a
 * RST on a dead port); the jitter keeps nodes restarted together from retrying in lockstep; and
 * a stream that keeps failing right after it opens backs off to the max too (the backoff
 * restarts only after a stream stayed up for healthyStreamLifetimeMsMin).
 */
export const reconnectDelayMsMin = 50;
export const reconnectDelayMsMax = 250;
export const reconnectJitterRatio = 0.2;
/** A raft stream that stayed open this long was healthy: if it breaks, reconnecting starts
 *  again from reconnectDelayMsMin. */
export const healthyStreamLifetimeMsMin = 1_000;

/** HTTP/2 keepalive: a silent peer is declared dead after keepaliveTimeMs + keepaliveTimeoutMs. */
export const keepaliveTimeMs = 10_000;
export const keepaliveTimeoutMs = 5_000;
/** The server accepts pings this often at most (must be <= the clients' keepaliveTimeMs). */
export const keepaliveMinPingIntervalMs = 5_000;

/** Snapshot data travels in chunks of this size, each with its own CRC-32. */
export const snapshotChunkBytes = 256 * 1024;
/** A snapshot stream larger than this is refused by the receiver. */
export const snapshotBytesMax = 64 * 1024 * 1024 * 1024;
/** Deadline of a whole snapshot transfer. */
export const snapshotTransferTimeoutMs = 10 * 60_000;
/** Deadline the server assumes for a ReadIndex whose caller sent none. */
export const requestTimeoutMsDefault = 10_000;
/** Upper bound on a caller's timeout for ReadIndex. */
export const requestTimeoutMsMax = 5 * 60_000;
