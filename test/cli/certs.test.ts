// `lockstep certs` and `--tls-dir`, mostly as a user runs them (the compiled CLI; the flag cases
// in-process, since each CLI start costs a second): the CA and node certificates it writes
// verify, keys are 0600, a second run reuses the CA; bad input exits 1 with the reason and writes
// nothing; `lockstep node` and `lockstep control` refuse a TLS directory that cannot serve them,
// with exit 1 and the file named. No output shows key material.
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CertsError, parseCertsFlags, writeCerts } from '../../src/cli/certs.js';
import { clusterCliPath } from '../support/cluster.js';
import { keyLines, keyMaterialIn } from '../support/tls.js';

const root = mkdtempSync(join(tmpdir(), 'lockstep-certs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** One run of the CLI; runs that do not depend on each other go together (each start costs ~1 s). */
function lockstep(args: readonly string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [clusterCliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolveRun({ code, output }));
  });
}

const dayMs = 86_400_000;

describe('lockstep certs', () => {
  it('makes a CA and, per id, a certificate it signs for the hosts, keys 0600; a second run reuses the CA', async () => {
    const dir = join(root, 'ok', 'tls');
    const first = await lockstep(['certs', '--out', dir, '--ids', 'c1,eu1', '--hosts', '127.0.0.1,localhost,*.eu.lockstep.svc.cluster.local', '--days', '30']);
    expect(first.code, first.output).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['c1-key.pem', 'c1.pem', 'ca-key.pem', 'ca.pem', 'eu1-key.pem', 'eu1.pem']);
    for (const key of ['ca-key.pem', 'c1-key.pem', 'eu1-key.pem']) expect((statSync(join(dir, key)).mode & 0o777).toString(8), key).toBe('600');
    const ca = new X509Certificate(readFileSync(join(dir, 'ca.pem')));
    expect(ca.ca).toBe(true);
    const eu1 = new X509Certificate(readFileSync(join(dir, 'eu1.pem')));
    expect(eu1.subject).toBe('CN=eu1');
    expect(eu1.ca).toBe(false);
    expect(eu1.verify(ca.publicKey)).toBe(true);
    expect(eu1.subjectAltName).toBe('IP Address:127.0.0.1, DNS:localhost, DNS:*.eu.lockstep.svc.cluster.local');
    expect(eu1.checkHost('eu-0.eu.lockstep.svc.cluster.local')).toBe('*.eu.lockstep.svc.cluster.local');
    expect(eu1.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(eu1.keyUsage?.sort()).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(Math.abs(new Date(eu1.validTo).getTime() - (Date.now() + 30 * dayMs))).toBeLessThan(dayMs);
    expect(first.output).toContain(`a new development CA: ${join(dir, 'ca.pem')}`);

    const caBefore = readFileSync(join(dir, 'ca.pem'), 'utf8');
    const second = await lockstep(['certs', '--out', dir, '--ids', 'us1']);
    expect(second.code, second.output).toBe(0);
    expect(second.output).toContain(`reusing the CA in ${join(dir, 'ca.pem')}`);
    expect(readFileSync(join(dir, 'ca.pem'), 'utf8')).toBe(caBefore);
    const us1 = new X509Certificate(readFileSync(join(dir, 'us1.pem')));
    expect(us1.verify(ca.publicKey)).toBe(true);
    expect(us1.subjectAltName).toBe('IP Address:127.0.0.1, DNS:localhost');
    for (const output of [first.output, second.output]) expect(keyMaterialIn(output, keyLines(dir))).toBeUndefined();

    // Without --ids, the CA alone (what deploy/kubernetes/ needs); again, it is reused.
    const caOnly = join(root, 'ca-only');
    expect(await writeCerts(parseCertsFlags({ out: caOnly }))).toMatchObject({ caCreated: true });
    expect(readdirSync(caOnly).sort()).toEqual(['ca-key.pem', 'ca.pem']);
    expect(await writeCerts(parseCertsFlags({ out: caOnly }))).toMatchObject({ caCreated: false });
  });

  it.each([
    [{ ids: 'eu1' }, /certs needs --out <dir>/],
    [{ out: 'd', ids: ',' }, /--ids names no id/],
    [{ out: 'd', ids: 'eu1,eu 2' }, /--ids entry 'eu 2' must be letters, digits/],
    [{ out: 'd', ids: 'eu1,../x' }, /--ids entry '..\/x' must be letters, digits/],
    [{ out: 'd', ids: 'eu1,eu1' }, /--ids names an id twice/],
    [{ out: 'd', ids: 'CA' }, /would overwrite the CA's files/],
    [{ out: 'd', ids: 'eu1', hosts: 'a b' }, /--hosts entry 'a b' is neither an IP address nor a DNS name/],
    [{ out: 'd', ids: 'eu1', hosts: ',' }, /--hosts names no host/],
    [{ out: 'd', ids: 'eu1', days: '0' }, /--days must be an integer from 1 to 3650, not '0'/],
    [{ out: 'd', ids: 'eu1', days: '1y' }, /--days must be an integer/],
  ])('refuses the flags %o', (flags, message) => {
    expect(() => parseCertsFlags(flags)).toThrow(CertsError);
    expect(() => parseCertsFlags(flags)).toThrow(message);
  });

  it('exits 1 with the reason on bad input or a directory it cannot write, and writes nothing', async () => {
    const dir = join(root, 'bad');
    const file = join(root, 'a-file');
    writeFileSync(file, 'not a directory');
    const [result, underFile] = await Promise.all([lockstep(['certs', '--out', dir, '--ids', 'eu1,eu 2']), lockstep(['certs', '--out', join(file, 'tls'), '--ids', 'eu1'])]);
    expect(result.code, result.output).toBe(1);
    expect(result.output).toContain("lockstep certs: --ids entry 'eu 2' must be letters, digits");
    expect(existsSync(dir), `refused flags created ${dir}`).toBe(false);
    expect(underFile.code, underFile.output).toBe(1);
    expect(underFile.output).toContain(`lockstep certs: cannot write to ${join(file, 'tls')} (ENOTDIR)`);
    await expect(writeCerts({ outDir: file, ids: ['eu1'], hosts: ['127.0.0.1'], days: 1 })).rejects.toThrow(`--out ${file} is not a directory`);
    expect(readFileSync(file, 'utf8')).toBe('not a directory');

    // Half a CA: the certificate without its key is not replaced by a new CA behind the user's back.
    const half = join(root, 'half');
    await writeCerts({ outDir: half, ids: ['eu1'], hosts: ['127.0.0.1'], days: 1 });
    unlinkSync(join(half, 'ca-key.pem'));
    const before = readdirSync(half).sort();
    await expect(writeCerts({ outDir: half, ids: ['eu2'], hosts: ['127.0.0.1'], days: 1 })).rejects.toThrow(`holds ${join(half, 'ca.pem')} but not ${join(half, 'ca-key.pem')}`);
    expect(readdirSync(half).sort()).toEqual(before);
  });
});

describe('--tls-dir', () => {
  it('refuses, with exit 1 before anything starts, a directory without this id, from another CA, or with the wrong key', async () => {
    const dir = join(root, 'node-tls');
    const other = join(root, 'other-tls');
    await writeCerts({ outDir: dir, ids: ['eu1', 'eu2'], hosts: ['127.0.0.1'], days: 1 });
    await writeCerts({ outDir: other, ids: ['eu3'], hosts: ['127.0.0.1'], days: 1 });
    copyFileSync(join(other, 'eu3.pem'), join(dir, 'eu3.pem'));
    copyFileSync(join(other, 'eu3-key.pem'), join(dir, 'eu3-key.pem'));
    copyFileSync(join(dir, 'eu1-key.pem'), join(dir, 'eu2-key.pem'));
    const data = join(root, 'node-data');
    const node = (id: string): string[] => ['node', '--id', id, '--region', 'eu', '--data', join(data, id), '--http', '0', '--grpc', '0', '--tls-dir', dir];
    // More cases (a key in place of a certificate, a CN of another id, a file for a directory)
    // are loadTlsMaterial's, in test/cluster/tls.test.ts; these are the CLI's exit and message.
    const cases = [
      [node('eu9'), `lockstep: --tls-dir: ${join(dir, 'eu9.pem')} does not exist (lockstep certs --out ${dir} --ids eu9 makes it)`],
      [node('eu3'), `lockstep: --tls-dir: ${join(dir, 'eu3.pem')} was not signed by the CA in ${join(dir, 'ca.pem')}`],
      [['control', '--id', 'eu2', '--data', join(data, 'eu2'), '--http', '0', '--grpc', '0', '--open', '--tls-dir', dir], `lockstep: --tls-dir: ${join(dir, 'eu2-key.pem')} is not the key of ${join(dir, 'eu2.pem')}`],
    ] as const;
    const results = await Promise.all(cases.map(([args]) => lockstep(args)));
    for (const [index, [args, message]] of cases.entries()) {
      const result = results[index] as { code: number | null; output: string };
      expect(result.code, `${args.join(' ')}: ${result.output}`).toBe(1);
      expect(result.output).toContain(message);
      expect(keyMaterialIn(result.output, keyLines(dir, other))).toBeUndefined();
    }
    expect(existsSync(data), 'a refused node made its data directory').toBe(false);
  });
});
