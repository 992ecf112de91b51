// gRPC channel and server options, all explicit: library defaults for message sizes,
// keepalive and reconnect timing differ between versions and between client and server.
import type { ChannelOptions } from '@grpc/grpc-js';
import {
  grpcMessageBytesMax,
  keepaliveMinPingIntervalMs,
  keepaliveTimeMs,
  keepaliveTimeoutMs,
  reconnectDelayMsMax,
  reconnectDelayMsMin,
} from './transport-limits.js';

export const serverChannelOptions: ChannelOptions = {
  'grpc.max_receive_message_length': grpcMessageBytesMax,
  'grpc.max_send_message_length': grpcMessageBytesMax,
  'grpc.keepalive_time_ms': keepaliveTimeMs,
  'grpc.keepalive_timeout_ms': keepaliveTimeoutMs,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': keepaliveMinPingIntervalMs,
  'grpc.http2.max_pings_without_data': 0,
};

export const clientChannelOptions: ChannelOptions = {
  'grpc.max_receive_message_length': grpcMessageBytesMax,
  'grpc.max_send_message_length': grpcMessageBytesMax,
  'grpc.keepalive_time_ms': keepaliveTimeMs,
  'grpc.keepalive_timeout_ms': keepaliveTimeoutMs,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.max_pings_without_data': 0,
  // The channel's own reconnect backoff (x1.6 per failed attempt, ±20% jitter in grpc-js) gets
  // the same bounds as the raft stream's: a peer link waits for its channel to be READY before
  // it reopens the stream, so this is what decides how soon a peer that is back is found.
  'grpc.initial_reconnect_backoff_ms': reconnectDelayMsMin,
  'grpc.max_reconnect_backoff_ms': reconnectDelayMsMax,
  // Raft retransmits on its own, and a ReadIndex or snapshot the host retries itself: grpc-js
  // retrying underneath would only hide failures from the layer that decides.
  'grpc.enable_retries': 0,
};
