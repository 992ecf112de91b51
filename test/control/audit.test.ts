// The control plane's hash-chained audit trail, on real processes: every applied control entry
// (deploys, refusals, rollout decisions, membership steps, drains, liveness) has a record that
// names who asked, what and the outcome; `clusterctl audit verify` passes on the live trail, and
// fails, naming the record, after one byte of the stored trail is flipped, a record is deleted,
// two are swapped, or the tail is truncated with its head rewritten to match (found against a
// checkpoint taken before); a checkpoint is signed by the control plane, and one altered after
// signing, or signed with a key the control log never recorded, is refused.
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editAppFile, writeApp } from '../support/app-files.js';
import { pollUntil } from '../support/cluster.js';
import { Fleet, nodesOf } from '../support/fleet.js';
import { notesFiles, notesResources } from '../support/notes-app.js';

interface AuditRecordJson {
  readonly seq: number;
  readonly actor: string;
  readonly op: string;
  readonly target: string;
  readonly outcome: string;
  readonly reason?: string;
  readonly detail: string;
  readonly hash: string;
}

describe('audit trail of the control plane', () => {
  let fleet: Fleet;
  let scratch: string;

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'lockstep-audit-'));
    fleet = await Fleet.start({ nodes: nodesOf('eu:3'), controlArgs: ['--audit-seal-every', '300ms', '--audit-export', join(scratch, 'exported.json')] });
    const appDir = writeApp('audit', notesFiles('v1'));
    await fleet.deploy(appDir, 'eu');
    editAppFile(appDir, 'resources.ts', () => notesResources('v2'));
    await fleet.deploy(appDir, 'eu');
    // Refused by apply: placement cannot be met in a region with no nodes.
    const refused = await fleet.ctl(['deploy', appDir, '--regions', 'eu,ap', '--replicas', '5']);
    expect(refused.code).toBe(1);
    const drain = await fleet.ctl(['drain', 'eu3', '--no-wait']);
    expect(drain.code, drain.stderr).toBe(0);
    expect((await fleet.ctl(['undrain', 'eu3'])).code).toBe(0);
  }, 180_000);

  afterAll(async () => {
    await fleet?.close();
    rmSync(scratch, { recursive: true, force: true });
  }, 60_000);

  it('records every action with its actor, target and outcome, refusals included', async () => {
    const listing = await fleet.ctlJson<{ head: { seq: number }; records: AuditRecordJson[] }>(['audit', '--limit', '10000']);
    const { records } = listing;
    expect(records.map((record) => record.seq)).toEqual(Array.from({ length: records.length }, (_unused, i) => i + 1));
    expect(listing.head.seq).toBe(records.length);
    const ops = (actor: string): string[] => [...new Set(records.filter((record) => record.actor === actor).map((record) => record.op))].sort();
    expect(ops('operator')).toEqual(['app.deploy', 'node.drain']);
    expect(ops('control:rollout')).toEqual(expect.arrayContaining(['app.activated', 'app.rolloutStaged']));
    expect(records.some((record) => record.op === 'node.register' && record.target === 'node:eu1' && record.actor === 'node:eu1')).toBe(true);
    expect(records.some((record) => record.op === 'app.step' && record.target === 'app:notes')).toBe(true);
    const refusal = records.find((record) => record.op === 'app.deploy' && record.outcome === 'refused');
    expect(refusal?.reason).toMatch(/ap/);
    // Filters.
    const notes = await fleet.ctlJson<{ records: AuditRecordJson[] }>(['audit', '--app', 'notes', '--actor', 'operator', '--limit', '10000']);
    expect(notes.records.map((record) => record.op)).toEqual(['app.deploy', 'app.deploy', 'app.deploy']);
    const table = await fleet.ctl(['audit', '--app', 'notes', '--actor', 'operator']);
    expect(table.stdout).toMatch(/SEQ\s+AT\s+ACTOR\s+OP\s+TARGET\s+OUTCOME\s+DETAIL/);
    expect(table.stdout).toMatch(/operator\s+app\.deploy\s+app:notes\s+refused/);
    const bad = await fleet.ctl(['audit', '--since', 'yesterday-ish']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/since/);
  }, 60_000);

  it('has the leader seal the head into the trail, signed with its recorded key', async () => {
    const listing = await fleet.ctlJson<{ records: (AuditRecordJson & { seal?: { seq: number; signer: string } })[] }>(['audit', '--actor', 'control:c1', '--limit', '10000']);
    const seals = listing.records.filter((record) => record.op === 'audit.seal');
    expect(seals.length).toBeGreaterThan(0);
    for (const seal of seals) expect(seal.seal?.signer).toBe('c1');
    expect(listing.records.some((record) => record.op === 'member.announce' && /audit key /.test(record.detail))).toBe(true);
    // Each seal is also sent outside the cluster (--audit-export), where verify can use it.
    const exported = join(scratch, 'exported.json');
    await pollUntil(() => (existsSync(exported) ? true : undefined), 10_000, 'the exported checkpoint');
    const verified = await fleet.ctl(['audit', 'verify', '--checkpoint', exported]);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    // clusterctl sends a checkpoint to a URL as well as to a file.
    const received: string[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        received.push(`${req.method ?? ''} ${req.url ?? ''} ${body}`);
        res.writeHead(201).end();
      });
    });
    await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', () => resolveListen()));
    const { port } = server.address() as AddressInfo;
    const sent = await fleet.ctl(['audit', 'checkpoint', '--out', `http://127.0.0.1:${port}/witness`]);
    server.close();
    expect(sent.code, sent.stderr).toBe(0);
    expect(sent.stdout).toMatch(/signed by c1, sent to http:\/\/127\.0\.0\.1:\d+\/witness/);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatch(/^POST \/witness \{/);
    expect(JSON.parse((received[0] as string).slice('POST /witness '.length)) as object).toMatchObject({ signer: 'c1' });
  }, 60_000);

  it('verifies the live trail, and names the record after each kind of tampering', async () => {
    const checkpointFile = join(scratch, 'checkpoint.json');
    const taken = await fleet.ctl(['audit', 'checkpoint', '--out', checkpointFile]);
    expect(taken.code, taken.stderr).toBe(0);
    const verified = await fleet.ctl(['audit', 'verify', '--checkpoint', checkpointFile]);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/^audit trail verified: \d+ records, head record \d+ \(\w{12}\), checkpoint record \d+ holds/);

    // A checkpoint edited after it was signed, or signed by a key the control log never held.
    const signed = JSON.parse(readFileSync(checkpointFile, 'utf8')) as { seq: number; signer: string; publicKey: string; signature: string };
    expect(signed.signer).toBe('c1');
    const forgedFile = join(scratch, 'forged.json');
    writeFileSync(forgedFile, JSON.stringify({ ...signed, seq: signed.seq - 1 }));
    const forged = await fleet.ctl(['audit', 'verify', '--checkpoint', forgedFile]);
    expect(forged.code).toBe(1);
    expect(forged.stdout).toMatch(/^checkpoint refused: the checkpoint's signature does not hold/);
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const otherKey = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    writeFileSync(forgedFile, JSON.stringify({ ...signed, publicKey: otherKey, signature: sign(null, Buffer.from('anything'), privateKey).toString('base64') }));
    const strangers = await fleet.ctl(['audit', 'verify', '--checkpoint', forgedFile]);
    expect(strangers.code).toBe(1);
    expect(strangers.stdout).toMatch(/^checkpoint refused: the checkpoint's key is not the one the control log recorded for c1/);

    const member = fleet.control[0];
    if (member === undefined) throw new Error('no control plane');
    const lmdbDir = join(member.dataDir, 'control', 'lmdb');
    const pristine = join(scratch, 'pristine');
    /** Stops the control plane, changes its stored trail, starts it again, and verifies. */
    const tamperAndVerify = async (tamper: (audit: ReturnType<typeof openAudit>) => void): Promise<{ code: number; stdout: string }> => {
      await member.stop();
      copyFileSync(join(lmdbDir, 'data.mdb'), pristine);
      const env = open({ path: lmdbDir, compression: false, encoding: 'msgpack' });
      const audit = openAudit(env);
      await env.transaction(() => tamper(audit));
      await env.close();
      await member.start();
      await fleet.controlLeader();
      const result = await fleet.ctl(['audit', 'verify', '--checkpoint', checkpointFile]);
      // Put the trail back for the next case.
      await member.stop();
      copyFileSync(pristine, join(lmdbDir, 'data.mdb'));
      await member.start();
      await fleet.controlLeader();
      return result;
    };

    const flipped = await tamperAndVerify(({ records }) => {
      const bytes = Buffer.from(records.get(3) as Buffer);
      const at = bytes.indexOf('"actor":"') + 10;
      bytes[at] = (bytes[at] as number) ^ 0x01; // one byte of the actor's name
      records.putSync(3, bytes);
    });
    expect(flipped.code).toBe(1);
    expect(flipped.stdout).toMatch(/^audit trail broken at record 3: record 3 was changed/);

    const deleted = await tamperAndVerify(({ records }) => records.removeSync(4));
    expect(deleted.code).toBe(1);
    expect(deleted.stdout).toMatch(/^audit trail broken at record 4: record 4 is missing/);

    const swapped = await tamperAndVerify(({ records }) => {
      const five = records.get(5) as Buffer;
      const six = records.get(6) as Buffer;
      records.putSync(5, six);
      records.putSync(6, five);
    });
    expect(swapped.code).toBe(1);
    expect(swapped.stdout).toMatch(/^audit trail broken at record 5: record 5 says it is record 6/);

    const truncated = await tamperAndVerify(({ records, head }) => {
      // Cut the tail and rewrite the head so the rest still chains: only the checkpoint knows.
      const last = head.get('seq') as number;
      for (let seq = last - 2; seq <= last; seq++) records.removeSync(seq);
      const newLast = records.get(last - 3) as Buffer;
      head.putSync('seq', last - 3);
      head.putSync('hash', createHashHex(newLast));
    });
    expect(truncated.code).toBe(1);
    expect(truncated.stdout).toMatch(/^audit trail broken at record \d+: (record \d+ hashes to \w+, the checkpoint says \w+|the trail ends at record \d+, but the checkpoint holds record \d+: its tail was truncated)/);

    // Rewritten from record 3 on, every later record re-chained and the head moved to match:
    // consistent on its own, but a seal the leader signed after record 3 no longer matches, and
    // the seal cannot be signed again without the member's key.
    const rewritten = await tamperAndVerify(({ records, head }) => {
      const last = head.get('seq') as number;
      let prev = createHashHex(records.get(2) as Buffer);
      for (let seq = 3; seq <= last; seq++) {
        const record = JSON.parse((records.get(seq) as Buffer).toString('utf8')) as Record<string, unknown>;
        if (seq === 3) record.actor = 'someone-else';
        record.prev = prev;
        const bytes = Buffer.from(JSON.stringify(record));
        records.putSync(seq, bytes);
        prev = createHashHex(bytes);
      }
      head.putSync('hash', prev);
    });
    expect(rewritten.code).toBe(1);
    expect(rewritten.stdout).toMatch(/^audit trail broken at record 3: record 3 hashes to \w+, but record \d+ sealed it as \w+: the trail up to it was rewritten/);

    // Untouched again, it verifies.
    const again = await fleet.ctl(['audit', 'verify', '--checkpoint', checkpointFile]);
    expect(again.code, again.stdout).toBe(0);
  }, 180_000);
});

function openAudit(env: ReturnType<typeof open>) {
  return {
    records: env.openDB<Buffer, number>({ name: 'audit', keyEncoding: 'uint32', encoding: 'binary' }),
    head: env.openDB<string | number, string>({ name: 'audit-head' }),
  };
}

/** The hash the control plane chains with: sha256 of the stored bytes. */
function createHashHex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
