// A cluster of real `lockstep node` processes with --tls-dir: it elects a leader and replicates
// writes over mutual TLS. A raft message with a far higher term, which would move a follower to
// that term, is sent to a follower over real sockets: without a client certificate, with a
// certificate from another CA, and with a valid certificate of another node than the sender it
// claims; the follower's term does not move. Sent last with the claimed sender's own certificate,
// the same message does move it, which shows the refusals are what kept it out. No process
// prints key material.
import { readFileSync, rmSync } from 'node:fs';
import { credentials, status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tlsFiles } from '../../src/cluster/tls.js';
import { appName, Cluster, outputKeptBytesMax, pollUntil, sleep, type ClusterNode } from '../support/cluster.js';
import { heartbeat, keyLines, keyMaterialIn, makeTlsDir, sendRawBatch } from '../support/tls.js';

/** How long a message that was going to move the follower has had to do so. */
const settleMs = 500;
const termJump = 100;
const requestTimeoutMs = 5_000;

/** The channel credentials a client with `id`'s files in `dir` presents, trusting `caDir`'s CA. */
function clientOf(dir: string, id: string, caDir = dir): ReturnType<typeof credentials.createSsl> {
  const files = tlsFiles(dir, id);
  return credentials.createSsl(readFileSync(tlsFiles(caDir, id).ca), readFileSync(files.key), readFileSync(files.cert));
}

describe('a cluster of node processes with --tls-dir', () => {
  let tlsDir = '';
  let foreignDir = '';
  let cluster: Cluster | undefined;
  const logLevelBefore = process.env.LOCKSTEP_TEST_LOG_LEVEL;

  beforeAll(async () => {
    [tlsDir, foreignDir] = await Promise.all([makeTlsDir(['n1', 'n2', 'n3']), makeTlsDir(['n1', 'n2', 'n3'], 'lockstep-tls-foreign-')]);
    // As much output as the nodes give, for the key-material check.
    process.env.LOCKSTEP_TEST_LOG_LEVEL = 'debug';
    cluster = await Cluster.start({ size: 3, tlsDir });
  });

  afterAll(async () => {
    if (logLevelBefore === undefined) delete process.env.LOCKSTEP_TEST_LOG_LEVEL;
    else process.env.LOCKSTEP_TEST_LOG_LEVEL = logLevelBefore;
    await cluster?.close();
    for (const dir of [tlsDir, foreignDir]) if (dir !== '') rmSync(dir, { recursive: true, force: true });
  });

  it('elects a leader and replicates a write to every node', async () => {
    const nodes = cluster!.nodes;
    for (const node of nodes) expect(node.output()).toMatch(new RegExp(`lockstep: node ${node.id} .* grpc 127\\.0\\.0\\.1:${node.grpcPort} \\(mutual TLS\\)`));
    const leader = await cluster!.waitForLeader();
    const follower = nodes.find((node) => node !== leader) as ClusterNode;
    const put = await fetch(`${follower.base}/${appName}/Product/tls1`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'Lamp', price: 20, stock: 5 }),
      signal: AbortSignal.timeout(requestTimeoutMs),
    });
    expect(put.status, await put.text()).toBe(204);
    for (const node of nodes) {
      const read = await fetch(`${node.base}/${appName}/Product/tls1`, { headers: { 'x-lockstep-consistency': 'linearizable' }, signal: AbortSignal.timeout(requestTimeoutMs) });
      expect(read.status, `a linearizable read on ${node.id}`).toBe(200);
      expect(((await read.json()) as { name: string }).name).toBe('Lamp');
    }
  });

  it('takes no raft message from a peer without a certificate, with another CA\'s, or speaking for another node', async () => {
    const leader = await cluster!.waitForLeader();
    const [follower, bystander] = cluster!.nodes.filter((node) => node !== leader) as [ClusterNode, ClusterNode];
    const termBefore = (await follower.status())?.term ?? 0;
    expect(termBefore).toBeGreaterThan(0);
    const forged = [heartbeat(leader.id, follower.id, termBefore + termJump)];
    const ca = readFileSync(tlsFiles(tlsDir, leader.id).ca);

    const bare = await sendRawBatch(follower.grpcAddress, credentials.createSsl(ca), leader.id, appName, forged);
    expect(bare.error?.code, 'no client certificate').toBe(status.UNAVAILABLE);
    const foreign = await sendRawBatch(follower.grpcAddress, clientOf(foreignDir, leader.id, tlsDir), leader.id, appName, forged);
    expect(foreign.error?.code, "a certificate of another CA for the leader's id").toBe(status.UNAVAILABLE);
    const impostor = await sendRawBatch(follower.grpcAddress, clientOf(tlsDir, bystander.id), leader.id, appName, forged);
    expect(impostor.error?.code, `${bystander.id}'s certificate claiming ${leader.id}`).toBe(status.PERMISSION_DENIED);
    await sleep(settleMs);
    const after = await follower.status();
    expect(after?.term, `${follower.id}'s term after the refused messages`).toBeLessThan(termBefore + termJump);

    // The control: with the claimed sender's own certificate the same message is taken.
    const genuine = await sendRawBatch(follower.grpcAddress, clientOf(tlsDir, leader.id), leader.id, appName, forged);
    expect(genuine.error).toBeNull();
    await pollUntil(async () => ((await follower.status())?.term ?? 0) >= termBefore + termJump || undefined, 5_000, `${follower.id} to take the genuine message's term`);
  });

  it('prints no key material, in any process output', () => {
    const keys = keyLines(tlsDir, foreignDir);
    expect(keys.length).toBeGreaterThan(0);
    for (const node of cluster!.nodes) {
      const output = node.output();
      expect(output.length, `${node.id}'s output was kept whole`).toBeLessThan(outputKeptBytesMax / 2);
      expect(keyMaterialIn(output, keys), `${node.id}'s output`).toBeUndefined();
    }
  });
});
