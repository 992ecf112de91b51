// The faults the cluster tests inject, each one "inject, hold, heal, wait until whole again".
// Shared by test/cluster/faults.test.ts and the random fault campaign.
import { sleep, type Cluster, type ClusterNode } from './cluster.js';

export interface FaultTiming {
  /** How long a fault is held before it is healed: several election timeouts. */
  readonly holdMs: number;
}

export type Fault = (cluster: Cluster, timing: FaultTiming) => Promise<void>;

async function followers(cluster: Cluster): Promise<{ leader: ClusterNode; followers: ClusterNode[] }> {
  const leader = await cluster.waitForLeader();
  return { leader, followers: cluster.running().filter((node) => node !== leader) };
}

function pick<T>(items: readonly T[]): T {
  if (items.length === 0) throw new Error('nothing to pick from');
  return items[Math.floor(Math.random() * items.length)] as T;
}

/** Waits until every node runs, serves the app and agrees on one leader. */
export async function settle(cluster: Cluster): Promise<void> {
  await cluster.waitReady();
  await cluster.waitForLeader();
}

export const faults: Readonly<Record<string, Fault>> = {
  async killLeaderRestart(cluster, timing) {
    const { leader } = await followers(cluster);
    await leader.kill();
    await sleep(timing.holdMs);
    await leader.start();
    await settle(cluster);
  },
  async killFollowerRestart(cluster, timing) {
    const { followers: others } = await followers(cluster);
    const victim = pick(others);
    await victim.kill();
    await sleep(timing.holdMs);
    await victim.start();
    await settle(cluster);
  },
  async pauseLeader(cluster, timing) {
    const { leader } = await followers(cluster);
    leader.pause();
    await sleep(timing.holdMs);
    leader.resume();
    await settle(cluster);
  },
  async isolateLeader(cluster, timing) {
    const { leader, followers: others } = await followers(cluster);
    await cluster.partition([[leader], others]);
    await sleep(timing.holdMs);
    await cluster.heal();
    await settle(cluster);
  },
  /** A follower alone on one side: the majority keeps serving, the minority node answers 503. */
  async isolateFollower(cluster, timing) {
    const { followers: others } = await followers(cluster);
    const victim = pick(others);
    await cluster.partition([[victim], cluster.running().filter((node) => node !== victim)]);
    await sleep(timing.holdMs);
    await cluster.heal();
    await settle(cluster);
  },
  /** The leader keeps one follower, the rest form the majority (with 5 nodes: 2 against 3). */
  async splitLeaderInMinority(cluster, timing) {
    const { leader, followers: others } = await followers(cluster);
    // The largest minority of the whole cluster: 1 of 3, 2 of 5.
    const minoritySize = Math.floor(others.length / 2);
    const minority = [leader, ...others.slice(0, minoritySize - 1)];
    const majority = cluster.running().filter((node) => !minority.includes(node));
    await cluster.partition([minority, majority]);
    await sleep(timing.holdMs);
    await cluster.heal();
    await settle(cluster);
  },
  /** The leader can still hear its followers but nothing it sends arrives. */
  async leaderCannotSend(cluster, timing) {
    const { leader, followers: others } = await followers(cluster);
    await Promise.all([leader.setFaults(others.map((node) => node.id), []), ...others.map((node) => node.setFaults([], [leader.id]))]);
    await sleep(timing.holdMs);
    await cluster.heal();
    await settle(cluster);
  },
  /** The followers can no longer reach the leader, but hear it (CheckQuorum must depose it). */
  async leaderCannotHear(cluster, timing) {
    const { leader, followers: others } = await followers(cluster);
    await Promise.all([leader.setFaults([], others.map((node) => node.id)), ...others.map((node) => node.setFaults([leader.id], []))]);
    await sleep(timing.holdMs);
    await cluster.heal();
    await settle(cluster);
  },
  async killAllRestart(cluster, timing) {
    await cluster.killAll();
    await sleep(Math.min(timing.holdMs, 1_000));
    await Promise.all(cluster.nodes.map((node) => node.start()));
    await settle(cluster);
  },
};
