// Mutual TLS for the cluster's gRPC (node to node, control member to control member): the PEM
// files of a TLS directory, checked once at start, and the grpc-js credentials made from them.
//
// A TLS directory holds `ca.pem` (the cluster's CA) and, for each process, `<id>.pem` and
// `<id>-key.pem` (what `lockstep certs` writes). The server requires a client certificate that
// the CA signed, and the client checks the server's certificate against the same CA, its host
// name against the address dialled, and its CN against the node id it means to reach. The CN is
// the process's node id: transport-server.ts refuses a call whose claimed sender differs.
//
// The key never leaves this object as text: it is a private field, and toJSON and inspect show
// fingerprints only, so a logged option object cannot carry it. Error messages name files, never
// their contents.
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { inspect } from 'node:util';
import { ServerCredentials, credentials, type ChannelCredentials, type ChannelOptions, type ServerUnaryCall } from '@grpc/grpc-js';
import type { NodeId } from '../raft/types.js';

/** A TLS directory that cannot serve this process; the message names the file and the fault. */
export class TlsMaterialError extends Error {}

/** PEM files are a few KiB; anything far larger is not one (and is not read whole). */
const pemFileBytesMax = 64 * 1024;

export interface TlsFiles {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** Where a TLS directory keeps the files of process `nodeId`. */
export function tlsFiles(dir: string, nodeId: NodeId): TlsFiles {
  return { ca: join(dir, 'ca.pem'), cert: join(dir, `${nodeId}.pem`), key: join(dir, `${nodeId}-key.pem`) };
}

/** How a peer link dials: its credentials and the channel options they need. */
export interface PeerChannel {
  readonly credentials: ChannelCredentials;
  readonly options: ChannelOptions;
}

/** A plaintext channel (no --tls-dir). */
export function plaintextChannel(): PeerChannel {
  return { credentials: credentials.createInsecure(), options: {} };
}

/** The CA, this process's certificate and its key, checked to belong together. */
export class TlsMaterial {
  readonly #keyPem: Buffer;

  constructor(
    readonly nodeId: NodeId,
    readonly caPem: Buffer,
    readonly certPem: Buffer,
    keyPem: Buffer,
  ) {
    this.#keyPem = keyPem;
  }

  /** Requires a client certificate signed by the CA (the TLS handshake fails without one). */
  serverCredentials(): ServerCredentials {
    return ServerCredentials.createSsl(this.caPem, [{ private_key: this.#keyPem, cert_chain: this.certPem }], true);
  }

  /** For dialling `peerId` at `address` (host:port): presents this process's certificate, accepts
   *  a server whose certificate the CA signed for that host and whose CN is `peerId`. */
  channel(peerId: NodeId, address: string): PeerChannel {
    const host = hostOf(address);
    const credentialsForPeer = credentials.createSsl(this.caPem, this.#keyPem, this.certPem, {
      // The host dialled, not the name grpc-js passes: that is the override below for an IP.
      checkServerIdentity: (_name: string, certificate: PeerCertificate) => {
        const hostError = checkServerIdentity(host, certificate);
        if (hostError !== undefined) return hostError;
        const named = commonNameOf(certificate);
        return named === peerId ? undefined : new Error(`the server at ${address} has a certificate for ${named ?? 'no CN'}, not for ${peerId}`);
      },
    });
    // grpc-js sends the host as the TLS server name (SNI), which RFC 6066 forbids for an IP
    // address (Node warns of it, grpc/grpc-node#1919); the override sends the peer's id instead.
    // Nothing serves by SNI here, and the certificate is still checked against the IP above.
    const options: ChannelOptions = isIP(host) === 0 ? {} : { 'grpc.ssl_target_name_override': peerId };
    return { credentials: credentialsForPeer, options };
  }

  toJSON(): Record<string, string> {
    return { nodeId: this.nodeId, ca: new X509Certificate(this.caPem).fingerprint256, cert: new X509Certificate(this.certPem).fingerprint256 };
  }

  [inspect.custom](): string {
    return `TlsMaterial ${JSON.stringify(this.toJSON())}`;
  }
}

/** Reads and checks the files of `nodeId` in `dir`: each a PEM of the right kind, the CA a CA,
 *  the certificate signed by it, valid now, for CN=`nodeId`, and the key its own. */
export function loadTlsMaterial(dir: string, nodeId: NodeId, now: Date = new Date()): TlsMaterial {
  const files = tlsFiles(dir, nodeId);
  const hint = `lockstep certs --out ${dir} --ids ${nodeId} makes it`;
  const caPem = readPem(files.ca, hint);
  const certPem = readPem(files.cert, hint);
  const keyPem = readPem(files.key, hint);
  const ca = parseCertificate(files.ca, caPem);
  if (!ca.ca) throw new TlsMaterialError(`${files.ca} is not a CA certificate`);
  const cert = parseCertificate(files.cert, certPem);
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) throw new TlsMaterialError(`${files.cert} was not signed by the CA in ${files.ca}`);
  for (const [path, certificate] of [[files.ca, ca], [files.cert, cert]] as const) {
    if (now < new Date(certificate.validFrom)) throw new TlsMaterialError(`${path} is not valid before ${certificate.validFrom}`);
    if (now > new Date(certificate.validTo)) throw new TlsMaterialError(`${path} expired on ${certificate.validTo}`);
  }
  const named = subjectCommonName(cert.subject);
  if (named !== nodeId) throw new TlsMaterialError(`${files.cert} is for ${named === undefined ? 'no CN' : `CN=${named}`}, not for this process's id ${nodeId}`);
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new TlsMaterialError(`${files.key} is not a PEM private key`);
  }
  if (!cert.checkPrivateKey(key)) throw new TlsMaterialError(`${files.key} is not the key of ${files.cert}`);
  return new TlsMaterial(nodeId, caPem, certPem, keyPem);
}

/** The node id a verified peer's certificate names (its CN), or undefined: no TLS, no verified
 *  certificate, or not exactly one CN. */
export function certifiedPeerId(call: Pick<ServerUnaryCall<unknown, unknown>, 'getAuthContext'>): NodeId | undefined {
  const certificate = call.getAuthContext().sslPeerCertificate;
  return certificate === undefined ? undefined : commonNameOf(certificate);
}

/** The host of host:port or [v6]:port. */
function hostOf(address: string): string {
  if (address.startsWith('[')) return address.slice(1, address.indexOf(']'));
  const colon = address.lastIndexOf(':');
  return colon < 0 ? address : address.slice(0, colon);
}

function commonNameOf(certificate: PeerCertificate): string | undefined {
  const commonName: unknown = certificate.subject?.CN;
  return typeof commonName === 'string' && commonName !== '' ? commonName : undefined;
}

/** CN of X509Certificate.subject, which is one `key=value` a line. */
function subjectCommonName(subject: string): string | undefined {
  const names = subject.split('\n').filter((line) => line.startsWith('CN='));
  return names.length === 1 ? (names[0] as string).slice(3) : undefined;
}

function readPem(path: string, hint: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new TlsMaterialError(`${path} does not exist (${hint})`);
    if (code === 'EACCES' || code === 'EPERM') throw new TlsMaterialError(`${path} cannot be read (permission denied)`);
    if (code === 'EISDIR') throw new TlsMaterialError(`${path} is a directory, not a PEM file`);
    throw new TlsMaterialError(`${path} cannot be read (${code ?? 'unknown error'})`);
  }
  if (bytes.byteLength > pemFileBytesMax) throw new TlsMaterialError(`${path} is larger than ${pemFileBytesMax} bytes: not a PEM file`);
  return bytes;
}

function parseCertificate(path: string, pem: Buffer): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new TlsMaterialError(`${path} is not a PEM certificate`);
  }
}
