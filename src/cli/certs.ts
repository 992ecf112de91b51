// `lockstep certs`: a development CA and a certificate per node id, as the PEM files that
// `--tls-dir` reads (src/cluster/tls.ts): ca.pem and ca-key.pem once (a CA already in the
// directory is reused, so certificates issued later still meet the earlier ones), then
// <id>.pem and <id>-key.pem for each id of --ids (none: the CA alone). Keys get mode 0600.
//
// All or nothing: every flag is checked and every certificate made in memory before the first
// file is written; files are staged under temporary names and renamed into place, and a failed
// write removes what it staged (and the directory, if this run created it).
//
// The X.509 code (src/security/dev-certs.ts) is imported when certificates are made, not with this
// module: it loads a global polyfill (see there) that a node process, whose CLI imports this
// module for its flags, should not carry.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { tlsFiles } from '../cluster/tls.js';
import type { DevCa } from '../security/dev-certs.js';

export const certsDefaults = { hosts: '127.0.0.1,localhost', days: '365' } as const;

/** The longest --days; a node certificate also never outlives its CA (dev-certs.ts). */
const nodeValidityDaysMax = 3650;
/** More node ids or hosts than any cluster here names; a bound, not a plan. */
const idsCountMax = 256;
const hostsCountMax = 64;
const idPattern = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** A DNS name, its first label possibly `*` (a wildcard SAN, e.g. for a Kubernetes service). */
const dnsNamePattern = /^(\*|[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const keyFileMode = 0o600;
const certFileMode = 0o644;

export interface CertsOptions {
  readonly outDir: string;
  readonly ids: readonly string[];
  readonly hosts: readonly string[];
  readonly days: number;
}

export interface CertsFlags {
  readonly out?: string | undefined;
  readonly ids?: string | undefined;
  readonly hosts?: string | undefined;
  readonly days?: string | undefined;
}

/** Bad input or a directory that cannot take the files; nothing was written. */
export class CertsError extends Error {}

export interface CertsOutcome {
  /** False when the directory's CA was reused. */
  readonly caCreated: boolean;
  readonly notAfter: Date;
}

export function parseCertsFlags(flags: CertsFlags): CertsOptions {
  if (flags.out === undefined || flags.out === '') throw new CertsError('certs needs --out <dir>');
  // Without --ids, the CA alone (for a CA that each machine or pod issues its own certificate from).
  const ids = flags.ids === undefined ? [] : list(flags.ids);
  if (flags.ids !== undefined && ids.length === 0) throw new CertsError('--ids names no id');
  if (ids.length > idsCountMax) throw new CertsError(`--ids names ${ids.length} ids; at most ${idsCountMax}`);
  for (const id of ids) {
    if (!idPattern.test(id)) throw new CertsError(`--ids entry '${id}' must be letters, digits, '-' and '_' (as --id), at most 64`);
    // ca.pem and ca-key.pem are the CA's files.
    if (id.toLowerCase() === 'ca') throw new CertsError(`--ids entry '${id}' would overwrite the CA's files; choose another id`);
  }
  if (new Set(ids).size !== ids.length) throw new CertsError('--ids names an id twice');
  const hosts = list(flags.hosts ?? certsDefaults.hosts);
  if (hosts.length === 0) throw new CertsError('--hosts names no host');
  if (hosts.length > hostsCountMax) throw new CertsError(`--hosts names ${hosts.length} hosts; at most ${hostsCountMax}`);
  for (const host of hosts) {
    if (isIP(host) === 0 && !(host.length <= 253 && dnsNamePattern.test(host))) throw new CertsError(`--hosts entry '${host}' is neither an IP address nor a DNS name`);
  }
  const daysText = flags.days ?? certsDefaults.days;
  const days = Number(daysText);
  if (!/^\d+$/.test(daysText) || days < 1 || days > nodeValidityDaysMax) throw new CertsError(`--days must be an integer from 1 to ${nodeValidityDaysMax}, not '${daysText}'`);
  return { outDir: flags.out, ids, hosts, days };
}

/** Makes (or reuses) the CA and issues every id's certificate; all files or none. */
export async function writeCerts(options: CertsOptions, now: Date = new Date()): Promise<CertsOutcome> {
  const dir = options.outDir;
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new CertsError(`--out ${dir} is not a directory`);
  const caFiles = { cert: join(dir, 'ca.pem'), key: join(dir, 'ca-key.pem') };
  const haveCert = existsSync(caFiles.cert);
  const haveKey = existsSync(caFiles.key);
  if (haveCert !== haveKey) {
    const [present, absent] = haveCert ? [caFiles.cert, caFiles.key] : [caFiles.key, caFiles.cert];
    throw new CertsError(`${dir} holds ${present} but not ${absent}: restore it, or remove ${present} to make a new CA (certificates of the old one will no longer be trusted)`);
  }
  const devCerts = await import('../security/dev-certs.js');
  let ca: DevCa;
  try {
    ca = haveCert ? await devCerts.loadDevCa(readFileSync(caFiles.cert, 'utf8'), readFileSync(caFiles.key, 'utf8'), now) : await devCerts.createDevCa(now);
  } catch (error) {
    if (error instanceof devCerts.DevCaError) throw new CertsError(`the CA in ${dir}: ${error.message}`);
    if ((error as NodeJS.ErrnoException).code !== undefined) throw new CertsError(`cannot read the CA in ${dir} (${(error as NodeJS.ErrnoException).code})`);
    throw error;
  }
  const files: { path: string; text: string; mode: number }[] = [];
  if (!haveCert) files.push({ path: caFiles.cert, text: ca.certPem, mode: certFileMode }, { path: caFiles.key, text: ca.keyPem, mode: keyFileMode });
  let notAfter = new Date(0);
  for (const id of options.ids) {
    const issued = await devCerts.issueNodeCertificate(ca, id, options.hosts, options.days, now);
    const paths = tlsFiles(dir, id);
    files.push({ path: paths.cert, text: issued.certPem, mode: certFileMode }, { path: paths.key, text: issued.keyPem, mode: keyFileMode });
    notAfter = issued.notAfter;
  }
  writeAllOrNothing(dir, files);
  return { caCreated: !haveCert, notAfter };
}

/** `lockstep certs`: bad input exits 1 with the reason, and nothing written. */
export async function runCerts(flags: CertsFlags): Promise<void> {
  try {
    const options = parseCertsFlags(flags);
    const outcome = await writeCerts(options);
    const dir = options.outDir;
    const lines = [
      outcome.caCreated ? `lockstep certs: a new development CA: ${join(dir, 'ca.pem')} (its key ${join(dir, 'ca-key.pem')}, mode 0600)` : `lockstep certs: reusing the CA in ${join(dir, 'ca.pem')}`,
      ...options.ids.map((id) => `  ${id}: ${tlsFiles(dir, id).cert} and ${tlsFiles(dir, id).key} (CN=${id})`),
      ...(options.ids.length === 0 ? [] : [`  hosts ${options.hosts.join(', ')}; valid until ${outcome.notAfter.toISOString()}`]),
      `start each process with --tls-dir ${dir}. The CA key signs certificates for any id: a development CA, not one for production.`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
  } catch (error) {
    if (!(error instanceof CertsError)) throw error;
    process.stderr.write(`lockstep certs: ${error.message}\n`);
    process.exit(1);
  }
}

function list(text: string): string[] {
  return text.split(',').map((part) => part.trim()).filter((part) => part !== '');
}

/** Stages every file under a temporary name (new, with its mode), then renames them into place.
 *  A failure before the renames leaves nothing behind, not even a directory this call made. */
function writeAllOrNothing(dir: string, files: readonly { path: string; text: string; mode: number }[]): void {
  let createdDir: string | undefined;
  const staged: string[] = [];
  try {
    createdDir = mkdirSync(dir, { recursive: true });
    for (const file of files) {
      const temporary = `${file.path}.tmp-${process.pid}`;
      writeFileSync(temporary, file.text, { mode: file.mode, flag: 'wx' });
      staged.push(temporary);
    }
  } catch (error) {
    for (const temporary of staged) unlinkSync(temporary);
    if (createdDir !== undefined) rmSync(createdDir, { recursive: true, force: true });
    const code = (error as NodeJS.ErrnoException).code;
    if (code === undefined) throw error;
    throw new CertsError(`cannot write to ${dir} (${code})`);
  }
  for (const [index, file] of files.entries()) renameSync(staged[index] as string, file.path);
}
