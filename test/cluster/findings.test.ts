// Regression tests for the bugs in FINDINGS.md, on real node processes. A known bug is an
// `it.fails` that starts failing once src/ is fixed: then turn it into a plain `it`. (#1 and #2 are fixed.)
//
// #1 If-Match on a lagging follower. A conditional write must be judged against the record's state
// at the point the write linearizes, not against whatever a lagging replica happens to hold:
// otherwise a client that read version v (or wrote it, acknowledged) gets 412 for If-Match v
// although v is the current version - a compare-and-set that fails when it must succeed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster, sleep } from '../support/cluster.js';

const requestTimeoutMs = 2_000;

describe('If-Match through a follower that has not applied the version yet', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await Cluster.start({ size: 3, tickMs: 30, requestTimeoutMs, idPrefix: 'c' });
  }, 60_000);
  afterAll(async () => {
    await cluster?.close();
  });

  async function put(base: string, key: string, name: string, headers: Record<string, string> = {}): Promise<Response> {
    const response = await fetch(`${base}/shop/Item/${key}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ name }),
      signal: AbortSignal.timeout(requestTimeoutMs + 5_000),
    });
    await response.text();
    return response;
  }

  /** Writes through the leader while `follower` receives nothing from it; returns the ETag. */
  async function writeBehindFollowersBack(key: string): Promise<{ etag: string; follower: string }> {
    const leader = await cluster.waitForLeader();
    const follower = cluster.running().find((node) => node !== leader);
    if (follower === undefined) throw new Error('no follower');
    await cluster.dropOneWay(leader, follower);
    const written = await put(leader.base, key, 'first');
    expect(written.status).toBe(204);
    return { etag: written.headers.get('etag') ?? '', follower: follower.id };
  }

  it('with X-Lockstep-Min-Index the follower does not judge a state older than the ETag', { timeout: 60_000 }, async () => {
    const { etag, follower } = await writeBehindFollowersBack('cas-min-index');
    try {
      const cas = await put(cluster.node(follower).base, 'cas-min-index', 'second', { 'if-match': etag, 'x-lockstep-min-index': etag.replace(/"/g, '') });
      // The follower cannot catch up while cut off: the only correct answers are 204 or 503.
      expect([204, 503]).toContain(cas.status);
    } finally {
      await cluster.heal();
    }
  });

  // FINDINGS.md #1: the If-Match check runs against the answering node's local state before
  // proposing, so a lagging follower answers 412 "is at version 0" at once.
  it('without a session index the follower answers If-Match of the current version with 204 or 503, not 412', { timeout: 60_000 }, async () => {
    const { etag, follower } = await writeBehindFollowersBack('cas-plain');
    try {
      const cas = await put(cluster.node(follower).base, 'cas-plain', 'second', { 'if-match': etag });
      expect([204, 503]).toContain(cas.status);
    } finally {
      await cluster.heal();
    }
  });

  // FINDINGS.md #2: a new leader's empty entry (and any conf change) does not advance the applied
  // index that reads wait for, so ReadIndex returns an index no node ever reports as applied.
  it('after a leader change, a linearizable read answers without waiting for a write', { timeout: 60_000 }, async () => {
    const leader = await cluster.waitForLeader();
    await leader.kill();
    try {
      const others = cluster.running();
      const newLeader = await cluster.waitForLeader(others);
      await sleep(300);
      const response = await fetch(`${newLeader.base}/shop/Item/nobody`, {
        headers: { 'x-lockstep-consistency': 'linearizable' },
        signal: AbortSignal.timeout(requestTimeoutMs + 5_000),
      });
      await response.text();
      expect(response.status).toBe(404);
    } finally {
      await leader.start();
      await cluster.waitReady();
    }
  });
});
