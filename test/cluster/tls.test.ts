// The transport with mutual TLS, in-process on 127.0.0.1 over real sockets: peers with
// certificates of the cluster's CA exchange raft messages; a peer without a client certificate,
// with one from another CA, or with a valid one that claims to be another node delivers nothing;
// a client refuses a server whose certificate names another node. And loadTlsMaterial refuses
// files that do not belong together, naming the file.
import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { join } from 'node:path';
import { credentials, status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TlsMaterialError, loadTlsMaterial, tlsFiles, type TlsMaterial } from '../../src/cluster/tls.js';
import { Transport, TransportError } from '../../src/cluster/transport.js';
import type { Message } from '../../src/raft/types.js';
import { pollUntil, sleep } from '../support/cluster.js';
import { heartbeat, keyLines, makeTlsDir, rawReadIndex, sendRawBatch } from '../support/tls.js';

/** How long a message that was going to arrive has had to do so. */
const settleMs = 400;

/** Waits until `condition` holds. */
function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<true> {
  return pollUntil(() => condition() || undefined, timeoutMs, what);
}

interface TlsNode {
  readonly id: string;
  readonly transport: Transport;
  readonly received: Message[];
  readonly readIndexCalls: string[];
}

let dir = '';
let foreignDir = '';
const transports: Transport[] = [];

beforeAll(async () => {
  dir = await makeTlsDir(['n1', 'n2', 'n3']);
  foreignDir = await makeTlsDir(['n2'], 'lockstep-tls-foreign-');
});

afterAll(() => {
  for (const path of [dir, foreignDir]) rmSync(path, { recursive: true, force: true });
});

afterEach(async () => {
  for (const transport of transports.splice(0)) await transport.stop();
});

async function startNode(id: string, tls: TlsMaterial | undefined): Promise<TlsNode> {
  const received: Message[] = [];
  const readIndexCalls: string[] = [];
  const transport = new Transport({
    nodeId: id,
    listenAddress: '127.0.0.1:0',
    peers: new Map(),
    ...(tls === undefined ? {} : { tls }),
    handlers: {
      onMessages: (_group, messages) => received.push(...messages),
      onReadIndex: async (group) => {
        readIndexCalls.push(group);
        return 7;
      },
      onSnapshot: async () => undefined,
    },
  });
  transports.push(transport);
  await transport.start();
  return { id, transport, received, readIndexCalls };
}

function connect(nodes: readonly TlsNode[]): void {
  for (const node of nodes) for (const other of nodes) if (other !== node) node.transport.addPeer(other.id, other.transport.boundAddress);
}

/** The channel credentials of `id` from `directory`, as a raw client presents them. */
function clientCredentialsOf(directory: string, id: string): ReturnType<typeof credentials.createSsl> {
  const files = tlsFiles(directory, id);
  return credentials.createSsl(readFileSync(files.ca), readFileSync(files.key), readFileSync(files.cert));
}

describe('Transport with mutual TLS', () => {
  it('delivers raft messages and ReadIndex between peers whose certificates the CA signed', async () => {
    const nodes = await Promise.all(['n1', 'n2', 'n3'].map((id) => startNode(id, loadTlsMaterial(dir, id))));
    connect(nodes);
    const [n1, n2, n3] = nodes as [TlsNode, TlsNode, TlsNode];
    n1.transport.send('g', [heartbeat('n1', 'n2', 1), heartbeat('n1', 'n3', 1)]);
    await waitFor(() => n2.received.length === 1 && n3.received.length === 1, 5_000, 'the heartbeats');
    expect(n2.received[0]?.from).toBe('n1');
    expect(await n3.transport.readIndex('n1', 'g', 2_000)).toBe(7);
    expect(n1.readIndexCalls).toEqual(['g']);
  });

  it('lets no message through from a peer without a client certificate, or with one from another CA', async () => {
    const n1 = await startNode('n1', loadTlsMaterial(dir, 'n1'));
    const ca = loadTlsMaterial(dir, 'n1').caPem;

    // No client certificate: the server trusts the client's CA choice no further than the handshake.
    const bare = await sendRawBatch(n1.transport.boundAddress, credentials.createSsl(ca), 'n2', 'g', [heartbeat('n2', 'n1', 9)]);
    expect(bare.error?.code, 'a stream without a client certificate').toBe(status.UNAVAILABLE);
    const bareRead = await rawReadIndex(n1.transport.boundAddress, credentials.createSsl(ca), 'n2', 'g');
    expect(bareRead.error?.code).toBe(status.UNAVAILABLE);

    // A whole node with a certificate for n2 from another CA, dialling n1 as n2 would.
    const impostor = await startNode('n2', loadTlsMaterial(foreignDir, 'n2'));
    impostor.transport.addPeer('n1', n1.transport.boundAddress);
    impostor.transport.send('g', [heartbeat('n2', 'n1', 9)]);
    await expect(impostor.transport.readIndex('n1', 'g', 1_000)).rejects.toBeInstanceOf(TransportError);
    // Plaintext against a TLS server gets nowhere either.
    const plain = await sendRawBatch(n1.transport.boundAddress, credentials.createInsecure(), 'n2', 'g', [heartbeat('n2', 'n1', 9)]);
    expect(plain.error).not.toBeNull();

    await sleep(settleMs);
    expect(n1.received, 'messages n1 took in').toEqual([]);
    expect(n1.readIndexCalls).toEqual([]);
    expect(n1.transport.counters().bytesReceived).toBe(0);
    // And n1 does not take the impostor's server for n2 either.
    n1.transport.addPeer('n2', impostor.transport.boundAddress);
    await expect(n1.transport.readIndex('n2', 'g', 1_000)).rejects.toMatchObject({ code: 'unavailable' });
    expect(impostor.readIndexCalls).toEqual([]);
  });

  it('refuses a certified peer that claims to be another node, on the stream, per message and on ReadIndex', async () => {
    const n1 = await startNode('n1', loadTlsMaterial(dir, 'n1'));
    const asN3 = clientCredentialsOf(dir, 'n3');

    const claimsN2 = await sendRawBatch(n1.transport.boundAddress, asN3, 'n2', 'g', [heartbeat('n2', 'n1', 9)]);
    expect(claimsN2.error?.code).toBe(status.PERMISSION_DENIED);
    expect(claimsN2.error?.details).toBe('the caller claims to be n2, but its certificate is for n3');

    // The batch's sender is right, one message inside it is not: that one is dropped.
    const mixed = await sendRawBatch(n1.transport.boundAddress, asN3, 'n3', 'g', [heartbeat('n2', 'n1', 9), heartbeat('n3', 'n1', 4)]);
    expect(mixed.error).toBeNull();
    await waitFor(() => n1.received.length === 1, 2_000, "n3's own message");
    expect(n1.received.map((message) => message.from)).toEqual(['n3']);
    expect(n1.transport.counters().messagesDropped).toBe(2);

    const read = await rawReadIndex(n1.transport.boundAddress, asN3, 'n2', 'g');
    expect(read.error?.code).toBe(status.PERMISSION_DENIED);
    expect(n1.readIndexCalls).toEqual([]);
  });

  it('keeps a client from taking a server whose certificate names another node for its peer', async () => {
    const [n1, n3] = await Promise.all([startNode('n1', loadTlsMaterial(dir, 'n1')), startNode('n3', loadTlsMaterial(dir, 'n3'))]);
    // n1 believes n2 is at n3's address (a stale directory, a reused address).
    n1.transport.addPeer('n2', n3.transport.boundAddress);
    await expect(n1.transport.readIndex('n2', 'g', 1_000)).rejects.toMatchObject({ code: 'unavailable' });
    n1.transport.send('g', [heartbeat('n1', 'n2', 1)]);
    await sleep(settleMs);
    expect(n3.received).toEqual([]);
    expect(n3.readIndexCalls).toEqual([]);
  });
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
