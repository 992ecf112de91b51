// TLS directories for tests, made as `lockstep certs` makes them (in-process: the same writeCerts),
// a raw gRPC client of the raft service that lets a test send what no honest node would (no
// client certificate, a foreign CA, a sender it is not), and the check that no output holds key
// material.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Metadata, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import { writeCerts } from '../../src/cli/certs.js';
import { encodeMessage } from '../../src/cluster/codec.js';
import { clientChannelOptions } from '../../src/cluster/transport-options.js';
import { raftServiceDefinition, type RaftAckWire, type RaftBatchWire, type ReadIndexResponseWire } from '../../src/cluster/transport-proto.js';
import type { Message } from '../../src/raft/types.js';

/** A new directory holding a CA and a certificate for each id, for 127.0.0.1 and localhost. */
export async function makeTlsDir(ids: readonly string[], prefix = 'lockstep-tls-'): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  await writeCerts({ outDir: dir, ids, hosts: ['127.0.0.1', 'localhost'], days: 1 });
  return dir;
}

/** A raft heartbeat (nothing else in it): enough to move a follower to a higher term. */
export function heartbeat(from: string, to: string, term: number): Message {
  return { type: 'heartbeat', from, to, term, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0 };
}

/** Longest a raw call may take before it counts as failed. */
const rawCallTimeoutMs = 3_000;
/** A raw client dials 127.0.0.1 but names the server `localhost` (a SAN of every test certificate):
 *  grpc-js would otherwise send the IP as the TLS server name, and Node warns of that. */
const rawChannelOptions = { 'grpc.ssl_target_name_override': 'localhost' };

export interface RawOutcome {
  /** null: the server took the stream and ended it with OK. */
  readonly error: ServiceError | null;
}

/** One raft stream from a raw client: writes one batch claiming `fromNode` and ends. */
export async function sendRawBatch(address: string, credentials: ChannelCredentials, fromNode: string, group: string, messages: readonly Message[], ): Promise<RawOutcome> {
  const client = new Client(address, credentials, { ...clientChannelOptions, ...rawChannelOptions });
  const method = raftServiceDefinition().Raft;
  try {
    return await new Promise<RawOutcome>((resolve) => {
      const stream = client.makeClientStreamRequest<RaftBatchWire, RaftAckWire>(
        method.path,
        method.requestSerialize,
        method.responseDeserialize,
        new Metadata(),
        { deadline: Date.now() + rawCallTimeoutMs },
        (error: ServiceError | null) => resolve({ error }),
      );
      stream.on('error', () => undefined); // the callback carries it
      stream.write({ fromNode, groups: [{ group, messages: messages.map((message) => encodeMessage(message)) }] });
      stream.end();
    });
  } finally {
    client.close();
  }
}

/** One ReadIndex call from a raw client claiming `fromNode`. */
export async function rawReadIndex(address: string, credentials: ChannelCredentials, fromNode: string, group: string, ): Promise<RawOutcome> {
  const client = new Client(address, credentials, { ...clientChannelOptions, ...rawChannelOptions });
  const method = raftServiceDefinition().ReadIndex;
  try {
    return await new Promise<RawOutcome>((resolve) => {
      client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, { fromNode, group }, new Metadata(), { deadline: Date.now() + rawCallTimeoutMs }, (error: ServiceError | null, _response?: ReadIndexResponseWire) => resolve({ error }));
    });
  } finally {
    client.close();
  }
}

/** Every line of every private key in `dirs` that is long enough to be unmistakable. */
export function keyLines(...dirs: string[]): string[] {
  const lines: string[] = [];
  for (const dir of dirs) {
    for (const file of readdirSync(dir).filter((name) => name.endsWith('-key.pem'))) {
      for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) if (line.length >= 16 && !line.startsWith('-----')) lines.push(line);
    }
  }
  return lines;
}

/** The first piece of key material found in `output`, or undefined. */
export function keyMaterialIn(output: string, lines: readonly string[]): string | undefined {
  if (output.includes('PRIVATE KEY')) return 'a PEM PRIVATE KEY header';
  return lines.find((line) => output.includes(line) || output.includes(line.slice(0, 24)));
}
