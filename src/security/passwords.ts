// Passwords for people, stored as scrypt hashes (memory-hard; Node's own crypto, no package
// needed). Format: `scrypt$<N>$<r>$<p>$<salt b64url>$<hash b64url>`, so the cost can rise
// later without breaking stored hashes.
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** 2^15 x 8 x 128 bytes: 32 MiB of memory per hash, about 100 ms on this class of machine. */
const cost = { N: 32_768, r: 8, p: 1 };
const keyBytes = 32;
const saltBytes = 16;
const maxmemBytes = 96 * 1024 * 1024;
export const passwordBytesMin = 12;
export const passwordBytesMax = 1024;

function derive(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(password, salt, keyBytes, { ...options, maxmem: maxmemBytes }, (error, key) => (error === null ? resolve(key) : reject(error))));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(saltBytes);
  const key = await derive(password, salt, cost);
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

export async function passwordMatches(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || salt === undefined || hash === undefined) return false;
  const expected = Buffer.from(hash, 'base64url');
  const key = await derive(password, Buffer.from(salt, 'base64url'), { N: Number(n), r: Number(r), p: Number(p) });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** Why a new password is refused, or undefined. */
export function passwordRefusal(password: unknown): string | undefined {
  if (typeof password !== 'string') return 'must be a string';
  const bytes = Buffer.byteLength(password);
  if (bytes < passwordBytesMin || bytes > passwordBytesMax) return `must be ${passwordBytesMin} to ${passwordBytesMax} bytes long`;
  return undefined;
}
