// Bearer tokens and their attenuation.
//
// A token is `lst_<id>_<secret>`: 32 random bytes the cluster stores only as their sha256. The
// same secret is the seed of an ed25519 key whose public half the cluster also stores; with it,
// whoever holds a token can derive a narrower one offline, without the cluster granting
// anything: `lsa_<body>`, where the body carries the token id, a chain of blocks, each a scope
// (src/security/permissions.ts) and the public key of the next block, signed by the key before
// it, and the private key of the last block. The first block is signed by the token's own key.
// A holder can append a block (narrowing further) but cannot drop or change one: each block is
// signed by a key only the previous holder had, and the proof key must match the last block.
// Verification needs only the stored public key; the secret never leaves the first holder.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { operations, type Operation, type Scope } from './permissions.js';

export const tokenPrefix = 'lst_';
export const attenuatedPrefix = 'lsa_';
/** Longest Authorization header value accepted, in bytes. */
export const tokenBytesMax = 8 * 1024;
/** Most attenuation blocks a token may carry. */
export const blockCountMax = 16;
/** Most names in one scope list. */
export const scopeNamesMax = 64;

const secretBytes = 32;
const tokenIdPattern = /^[0-9a-f]{16}$/;
const base64url = /^[A-Za-z0-9_-]+$/;
const namePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

// DER framing of a raw ed25519 key (RFC 8410): the prefix before the 32 key bytes.
const pkcs8Prefix = Buffer.from('302e020100300506032b657004220420', 'hex');
const spkiPrefix = Buffer.from('302a300506032b6570032100', 'hex');

export interface IssuedToken {
  readonly id: string;
  /** The whole bearer token, to hand to its holder once. */
  readonly token: string;
  /** sha256 of the secret, hex: what the cluster stores. */
  readonly hash: string;
  /** The attenuation key's public half (raw, base64url): stored beside the hash. */
  readonly publicKey: string;
}

/** A bearer credential as presented, before it is checked against the stored token. */
export type PresentedToken =
  | { readonly kind: 'base'; readonly id: string; readonly secret: Buffer }
  | { readonly kind: 'attenuated'; readonly id: string; readonly blocks: readonly Block[]; readonly proof: Buffer };

export interface Block {
  readonly scope: Scope;
  /** Public key (raw, base64url) that signs the next block, and matches the proof. */
  readonly key: string;
  /** Signature (base64url) by the key of the block before (the token's own key for the first). */
  readonly signature: string;
}

export class TokenFormatError extends Error {}

export function hashSecret(secret: Buffer): string {
  return createHash('sha256').update(secret).digest('hex');
}

function privateKeyOf(seed: Buffer): KeyObject {
  return createPrivateKey({ key: Buffer.concat([pkcs8Prefix, seed]), format: 'der', type: 'pkcs8' });
}

function rawPublicKey(key: KeyObject): string {
  return createPublicKey(key).export({ format: 'der', type: 'spki' }).subarray(spkiPrefix.length).toString('base64url');
}

function publicKeyOf(raw: string): KeyObject {
  return createPublicKey({ key: Buffer.concat([spkiPrefix, Buffer.from(raw, 'base64url')]), format: 'der', type: 'spki' });
}

function seedOf(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'pkcs8' }).subarray(pkcs8Prefix.length);
}

/** A new token: random id and secret. */
export function issueToken(): IssuedToken {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(secretBytes);
  return { id, token: `${tokenPrefix}${id}_${secret.toString('base64url')}`, hash: hashSecret(secret), publicKey: rawPublicKey(privateKeyOf(secret)) };
}

/** What the cluster stores of a token given as text (a bootstrap token read from a file). */
export function storedFormOf(token: string): Omit<IssuedToken, 'token'> {
  const presented = parseToken(token);
  if (presented.kind !== 'base') throw new TokenFormatError('an attenuated token cannot be registered; register the token it was derived from');
  return { id: presented.id, hash: hashSecret(presented.secret), publicKey: rawPublicKey(privateKeyOf(presented.secret)) };
}

/** The scope, its keys in one order (the bytes a block's signature covers). */
export function canonicalScope(scope: Scope): string {
  const ordered: Record<string, unknown> = {};
  if (scope.apps !== undefined) ordered.apps = [...scope.apps].sort();
  if (scope.ops !== undefined) ordered.ops = [...scope.ops].sort();
  if (scope.regions !== undefined) ordered.regions = [...scope.regions].sort();
  if (scope.tables !== undefined) ordered.tables = [...scope.tables].sort();
  if (scope.expiresAt !== undefined) ordered.expiresAt = scope.expiresAt;
  return JSON.stringify(ordered);
}

function signedBytes(id: string, position: number, previousSignature: string, block: Pick<Block, 'scope' | 'key'>): Buffer {
  return Buffer.from(`lockstep attenuation\n${id}\n${position}\n${previousSignature}\n${canonicalScope(block.scope)}\n${block.key}`);
}

/** A narrower token derived from `token` (base or already attenuated): the holder's own work,
 *  no request to the cluster. Throws TokenFormatError for a malformed token or scope. */
export function attenuate(token: string, scope: Scope): string {
  const presented = parseToken(token);
  const checked = parseScope(scope);
  const signer = presented.kind === 'base' ? privateKeyOf(presented.secret) : privateKeyOf(presented.proof);
  const blocks = presented.kind === 'base' ? [] : presented.blocks;
  if (blocks.length >= blockCountMax) throw new TokenFormatError(`a token carries at most ${blockCountMax} attenuations`);
  const next = generateKeyPairSync('ed25519').privateKey;
  const key = rawPublicKey(next);
  const previous = blocks[blocks.length - 1]?.signature ?? '';
  const signature = sign(null, signedBytes(presented.id, blocks.length, previous, { scope: checked, key }), signer).toString('base64url');
  const body = { t: presented.id, b: [...blocks, { scope: checked, key, signature }].map((b) => ({ s: JSON.parse(canonicalScope(b.scope)) as unknown, k: b.key, g: b.signature })), p: seedOf(next).toString('base64url') };
  return `${attenuatedPrefix}${Buffer.from(JSON.stringify(body)).toString('base64url')}`;
}

/** Parses a bearer token's text (no check against the cluster's tokens yet). */
export function parseToken(text: string): PresentedToken {
  if (text.length > tokenBytesMax) throw new TokenFormatError(`the token is longer than ${tokenBytesMax} bytes`);
  if (text.startsWith(tokenPrefix)) {
    const [id, secret] = text.slice(tokenPrefix.length).split('_', 2) as [string, string | undefined];
    const rest = text.slice(tokenPrefix.length + id.length + 1);
    if (!tokenIdPattern.test(id) || secret === undefined || !base64url.test(rest)) throw new TokenFormatError('the token is malformed');
    const bytes = Buffer.from(rest, 'base64url');
    if (bytes.length !== secretBytes) throw new TokenFormatError('the token is malformed');
    return { kind: 'base', id, secret: bytes };
  }
  if (text.startsWith(attenuatedPrefix)) {
    const encoded = text.slice(attenuatedPrefix.length);
    if (!base64url.test(encoded)) throw new TokenFormatError('the token is malformed');
    let body: { t?: unknown; b?: unknown; p?: unknown };
    try {
      body = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')) as typeof body;
    } catch {
      throw new TokenFormatError('the token is malformed');
    }
    if (body === null || typeof body !== 'object' || typeof body.t !== 'string' || !tokenIdPattern.test(body.t) || !Array.isArray(body.b) || typeof body.p !== 'string' || !base64url.test(body.p)) {
      throw new TokenFormatError('the token is malformed');
    }
    if (body.b.length === 0 || body.b.length > blockCountMax) throw new TokenFormatError(`an attenuated token carries 1 to ${blockCountMax} blocks`);
    const blocks = (body.b as unknown[]).map((raw): Block => {
      const block = raw as { s?: unknown; k?: unknown; g?: unknown } | null;
      if (block === null || typeof block !== 'object' || typeof block.k !== 'string' || !base64url.test(block.k) || typeof block.g !== 'string' || !base64url.test(block.g)) {
        throw new TokenFormatError('the token is malformed');
      }
      return { scope: parseScope(block.s), key: block.k, signature: block.g };
    });
    const proof = Buffer.from(body.p, 'base64url');
    if (proof.length !== secretBytes) throw new TokenFormatError('the token is malformed');
    return { kind: 'attenuated', id: body.t, blocks, proof };
  }
  throw new TokenFormatError(`the token is not a Lockstep token (${tokenPrefix}... or ${attenuatedPrefix}...)`);
}

/** The scopes an attenuated token's blocks add, once every signature and the proof hold
 *  against the token's stored public key; throws TokenFormatError naming what does not. */
export function verifyBlocks(presented: Extract<PresentedToken, { kind: 'attenuated' }>, storedPublicKey: string): readonly Scope[] {
  let signer = publicKeyOf(storedPublicKey);
  let previous = '';
  presented.blocks.forEach((block, position) => {
    let holds = false;
    try {
      holds = verify(null, signedBytes(presented.id, position, previous, block), signer, Buffer.from(block.signature, 'base64url'));
      signer = publicKeyOf(block.key);
    } catch {
      holds = false;
    }
    if (!holds) throw new TokenFormatError(`attenuation ${position + 1} of the token is not signed by the key before it`);
    previous = block.signature;
  });
  const last = presented.blocks[presented.blocks.length - 1] as Block;
  const proven = rawPublicKey(privateKeyOf(presented.proof));
  // Public keys are not secret: a plain comparison leaks nothing.
  if (proven !== last.key) throw new TokenFormatError("the token's proof does not match its last attenuation");
  return presented.blocks.map((block) => block.scope);
}

function nameList(value: unknown, field: string, allowed?: ReadonlySet<string>): string[] {
  if (!Array.isArray(value) || value.length > scopeNamesMax || !value.every((name) => typeof name === 'string' && (allowed === undefined ? namePattern.test(name) : allowed.has(name)))) {
    throw new TokenFormatError(`scope.${field} must be a list of at most ${scopeNamesMax} ${allowed === undefined ? 'names' : `of ${[...allowed].join(', ')}`}`);
  }
  return [...new Set(value as string[])];
}

const operationSet: ReadonlySet<string> = new Set(operations);

/** A scope as written by a caller (a token issue request, an attenuation), checked. */
export function parseScope(value: unknown): Scope {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new TokenFormatError('a scope must be an object');
  const raw = value as Record<string, unknown>;
  for (const key of Object.keys(raw)) if (!['apps', 'ops', 'regions', 'tables', 'expiresAt'].includes(key)) throw new TokenFormatError(`a scope has no field '${key}' (apps, ops, regions, tables, expiresAt)`);
  const expiresAt = raw.expiresAt;
  if (expiresAt !== undefined && (typeof expiresAt !== 'number' || !Number.isSafeInteger(expiresAt) || expiresAt < 0)) throw new TokenFormatError('scope.expiresAt must be ms since the epoch');
  return {
    ...(raw.apps === undefined ? {} : { apps: nameList(raw.apps, 'apps') }),
    ...(raw.ops === undefined ? {} : { ops: nameList(raw.ops, 'ops', operationSet) as Operation[] }),
    ...(raw.regions === undefined ? {} : { regions: nameList(raw.regions, 'regions') }),
    ...(raw.tables === undefined ? {} : { tables: nameList(raw.tables, 'tables') }),
    ...(expiresAt === undefined ? {} : { expiresAt: expiresAt as number }),
  };
}

/** Compares a presented secret with the stored hash in constant time. */
export function secretMatches(secret: Buffer, storedHash: string): boolean {
  const presented = Buffer.from(hashSecret(secret), 'hex');
  const stored = Buffer.from(storedHash, 'hex');
  return stored.length === presented.length && timingSafeEqual(presented, stored);
}
