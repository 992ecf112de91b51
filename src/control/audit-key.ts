// A control-plane member's audit signing key (ed25519): created at its first start in its data
// directory (readable by its owner only), announced in the control log with the member's URL, and
// used to sign the checkpoints of the audit chain's head that operators keep outside the cluster.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ChainHead } from './audit.js';

export interface AuditKey {
  readonly privateKey: KeyObject;
  /** SPKI DER, base64: what the control log records and checkpoints carry. */
  readonly publicKey: string;
}

/** Reads the key at `path`, or creates it there on the first start. */
export function loadOrCreateAuditKey(path: string): AuditKey {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    const { privateKey } = generateKeyPairSync('ed25519');
    // 'wx': never overwrite a key another start wrote meanwhile.
    writeFileSync(path, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  }
  const privateKey = createPrivateKey(readFileSync(path));
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error(`${path} does not hold an ed25519 private key`);
  return { privateKey, publicKey: createPublicKey(privateKey).export({ type: 'spki', format: 'der' }).toString('base64') };
}

export interface SignedCheckpoint extends ChainHead {
  /** When it was signed (ISO time). */
  readonly at: string;
  readonly signer: string;
  readonly publicKey: string;
  /** ed25519 over checkpointMessage(), base64. */
  readonly signature: string;
}

function checkpointMessage(head: ChainHead, at: string, signer: string): Buffer {
  return Buffer.from(`lockstep audit checkpoint\n${head.seq}\n${head.hash}\n${at}\n${signer}`);
}

export function signCheckpoint(key: AuditKey, signer: string, head: ChainHead, at: string): SignedCheckpoint {
  return { ...head, at, signer, publicKey: key.publicKey, signature: sign(null, checkpointMessage(head, at, signer), key.privateKey).toString('base64') };
}

/** Whether the checkpoint was signed, unchanged, with `publicKey` (base64 SPKI DER). */
export function checkpointSignatureHolds(checkpoint: SignedCheckpoint, publicKey: string): boolean {
  try {
    const key = createPublicKey({ key: Buffer.from(publicKey, 'base64'), format: 'der', type: 'spki' });
    return verify(null, checkpointMessage(checkpoint, checkpoint.at, checkpoint.signer), key, Buffer.from(checkpoint.signature, 'base64'));
  } catch {
    return false;
  }
}
