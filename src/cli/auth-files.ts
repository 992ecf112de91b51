// The credential files of a secured cluster. A control plane's --auth-dir holds `system.token`
// (the cluster's own processes: nodes' heartbeats, the control plane's calls to nodes; created
// on first use, every member and node must share it) and `admin.token` (the first admin's
// token: given by the operator, or by LOCKSTEP_ADMIN_TOKEN, or made by the first start, which
// then says where it is, once). A node reads the system token from --token-file. Files are
// created 0600 and their contents never logged.
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { issueToken, parseToken, TokenFormatError } from '../security/tokens.js';

export class AuthFileError extends Error {}

/** A token read from `path` (a base token, unless `attenuatedToo`); throws AuthFileError saying
 *  what is wrong (never its content). */
export function readTokenFile(path: string, attenuatedToo = false): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (error) {
    throw new AuthFileError(`cannot read the token file ${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  try {
    if (parseToken(text).kind !== 'base' && !attenuatedToo) throw new AuthFileError(`${path} holds an attenuated token; it must hold a token the cluster registered`);
  } catch (error) {
    if (error instanceof TokenFormatError) throw new AuthFileError(`${path} does not hold a Lockstep token (lst_...): ${error.message}`);
    throw error;
  }
  return text;
}

function writeSecret(path: string, text: string): void {
  writeFileSync(path, `${text}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
}

export interface ControlCredentials {
  readonly systemToken: string;
  readonly adminToken: string;
  /** Where the admin token was made by this start (not given by the operator): said once, if
   *  and when this member registers it. */
  readonly adminTokenPath: string | undefined;
}

/** The control plane's credentials from --auth-dir (created as needed) and LOCKSTEP_ADMIN_TOKEN. */
export function controlCredentials(dir: string, env: NodeJS.ProcessEnv): ControlCredentials {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!statSync(dir).isDirectory()) throw new AuthFileError(`--auth-dir ${dir} is not a directory`);
  } catch (error) {
    if (error instanceof AuthFileError) throw error;
    throw new AuthFileError(`cannot use --auth-dir ${dir}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const systemPath = join(dir, 'system.token');
  if (!existsSync(systemPath)) writeSecret(systemPath, issueToken().token);
  const systemToken = readTokenFile(systemPath);
  const adminPath = join(dir, 'admin.token');
  if (existsSync(adminPath)) return { systemToken, adminToken: readTokenFile(adminPath), adminTokenPath: undefined };
  const fromEnv = env.LOCKSTEP_ADMIN_TOKEN?.trim();
  if (fromEnv !== undefined && fromEnv !== '') {
    try {
      if (parseToken(fromEnv).kind !== 'base') throw new AuthFileError('LOCKSTEP_ADMIN_TOKEN holds an attenuated token');
    } catch (error) {
      if (error instanceof TokenFormatError) throw new AuthFileError(`LOCKSTEP_ADMIN_TOKEN is not a Lockstep token (lst_...): ${error.message}`);
      throw error;
    }
    return { systemToken, adminToken: fromEnv, adminTokenPath: undefined };
  }
  writeSecret(adminPath, issueToken().token);
  return { systemToken, adminToken: readTokenFile(adminPath), adminTokenPath: adminPath };
}

/** Writes a new token to `path` (0600) unless one is there; returns the token's text. */
export function ensureTokenFile(path: string): string {
  if (!existsSync(path)) writeSecret(path, issueToken().token);
  return readTokenFile(path);
}
