// The gRPC service of proto/raft.proto, loaded at run time with proto-loader, and the shapes of
// its messages as proto-loader hands them over (camelCase fields, uint64 as number, bytes as
// Buffer, defaults filled in).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPackageDefinition, type GrpcObject, type MethodDefinition, type ServiceClientConstructor, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

export interface GroupMessagesWire {
  group: string;
  messages: Uint8Array[];
}
export interface RaftBatchWire {
  fromNode: string;
  groups: GroupMessagesWire[];
}
export type RaftAckWire = Record<string, never>;
export interface ReadIndexRequestWire {
  fromNode: string;
  group: string;
}
export interface ReadIndexResponseWire {
  index: number;
}
export interface SnapshotChunkWire {
  fromNode: string;
  group: string;
  metadata: Uint8Array;
  data: Uint8Array;
  crc32: number;
  offset: number;
  last: boolean;
}
export interface SnapshotAckWire {
  ok: boolean;
  error: string;
}

export interface RaftServiceDefinition {
  readonly Raft: MethodDefinition<RaftBatchWire, RaftAckWire>;
  readonly ReadIndex: MethodDefinition<ReadIndexRequestWire, ReadIndexResponseWire>;
  readonly InstallSnapshot: MethodDefinition<SnapshotChunkWire, SnapshotAckWire>;
}

/** proto/ sits at the package root: two levels above src/cluster/ when run from the sources,
 *  three above dist/src/cluster/ once compiled. */
function protoPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '..', '..', 'proto', 'raft.proto'), join(here, '..', '..', '..', 'proto', 'raft.proto')];
  const found = candidates.find((candidate) => existsSync(candidate));
  if (found === undefined) throw new Error(`proto/raft.proto not found (looked in ${candidates.join(', ')})`);
  return found;
}

let cached: RaftServiceDefinition | undefined;
let cachedUntyped: ServiceDefinition | undefined;

/** The same definition as grpc-js types it, for Server.addService. */
export function raftGrpcServiceDefinition(): ServiceDefinition {
  raftServiceDefinition();
  return cachedUntyped!;
}

export function raftServiceDefinition(): RaftServiceDefinition {
  if (cached !== undefined) return cached;
  const packageDefinition = loadSync(protoPath(), {
    keepCase: false,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const grpcObject = loadPackageDefinition(packageDefinition);
  const lockstep = grpcObject.lockstep as GrpcObject;
  const raft = lockstep.raft as GrpcObject;
  const service = raft.RaftTransport as ServiceClientConstructor;
  // The one cast from the loader's untyped definition to the shapes declared above; the
  // transport tests exercise every method, so a mismatch with the .proto fails there.
  cachedUntyped = service.service;
  cached = service.service as unknown as RaftServiceDefinition;
  return cached;
}
