// loadTlsMaterial: the files of a TLS directory as `lockstep certs` writes them load; files that
// do not belong together are refused, naming the file; loaded material never shows its key.
import { copyFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TlsMaterialError, loadTlsMaterial } from '../../src/cluster/tls.js';
import { keyLines, makeTlsDir } from '../support/tls.js';

let dir = '';
let foreignDir = '';

beforeAll(async () => {
  dir = await makeTlsDir(['n1', 'n2', 'n3']);
  foreignDir = await makeTlsDir(['n2'], 'lockstep-tls-foreign-');
});

afterAll(() => {
  for (const path of [dir, foreignDir]) rmSync(path, { recursive: true, force: true });
});

describe('loadTlsMaterial', () => {
  it('refuses files that are missing, foreign or mismatched, naming the file and not its contents', async () => {
    const broken = await makeTlsDir(['n1', 'n2'], 'lockstep-tls-broken-');
    try {
      const keys = keyLines(broken, foreignDir);
      const refusal = (id: string): string => {
        try {
          loadTlsMaterial(broken, id);
        } catch (error) {
          expect(error).toBeInstanceOf(TlsMaterialError);
          return (error as Error).message;
        }
        throw new Error(`${id} was accepted`);
      };
      expect(refusal('n9')).toBe(`${join(broken, 'n9.pem')} does not exist (lockstep certs --out ${broken} --ids n9 makes it)`);
      copyFileSync(join(foreignDir, 'n2.pem'), join(broken, 'n2.pem'));
      expect(refusal('n2')).toBe(`${join(broken, 'n2.pem')} was not signed by the CA in ${join(broken, 'ca.pem')}`);
      copyFileSync(join(broken, 'n1.pem'), join(broken, 'n3.pem'));
      copyFileSync(join(broken, 'n1-key.pem'), join(broken, 'n3-key.pem'));
      expect(refusal('n3')).toBe(`${join(broken, 'n3.pem')} is for CN=n1, not for this process's id n3`);
      copyFileSync(join(foreignDir, 'n2-key.pem'), join(broken, 'n1-key.pem'));
      expect(refusal('n1')).toBe(`${join(broken, 'n1-key.pem')} is not the key of ${join(broken, 'n1.pem')}`);
      // A key where the certificate belongs: the message names the file, and shows none of it.
      copyFileSync(join(broken, 'n1-key.pem'), join(broken, 'n1.pem'));
      expect(refusal('n1')).toBe(`${join(broken, 'n1.pem')} is not a PEM certificate`);
      writeFileSync(join(broken, 'ca.pem'), 'not a certificate');
      expect(refusal('n1')).toBe(`${join(broken, 'ca.pem')} is not a PEM certificate`);
      // Logged or inspected, the material shows fingerprints, never the key.
      const material = loadTlsMaterial(dir, 'n1');
      for (const shown of [JSON.stringify(material), inspect(material), inspect({ options: { tls: material } }, { depth: 5 })]) {
        for (const key of keyLines(dir)) expect(shown).not.toContain(key.slice(0, 24));
        expect(shown).toContain(material.toJSON().cert as string);
      }
      expect(keys.length).toBeGreaterThan(0);
    } finally {
      rmSync(broken, { recursive: true, force: true });
    }
  });
});
