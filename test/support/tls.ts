// TLS directories for tests, made as `lockstep certs` makes them (in-process: the same
// writeCerts), and the check that no output holds key material.
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeCerts } from '../../src/cli/certs.js';

/** A new directory holding a CA and a certificate for each id, for 127.0.0.1 and localhost. */
export async function makeTlsDir(ids: readonly string[], prefix = 'lockstep-tls-'): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  await writeCerts({ outDir: dir, ids, hosts: ['127.0.0.1', 'localhost'], days: 1 });
  return dir;
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
