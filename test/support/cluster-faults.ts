// The faults the cluster tests inject, each one "inject, hold, heal, wait until whole again".
// Shared by test/cluster/faults.test.ts and the random fault campaign.
import type { FaultWindow } from './availability.js';
import { sleep, type Cluster, type ClusterNode } from './cluster.js';

export interface FaultTiming {
  /** How long a fault is held before it is healed: several election timeouts. */
  readonly holdMs: number;
}

/** Resolves, once the cluster settled again, with when the fault was injected and when it settled. */
export type Fault = (cluster: Cluster, timing: FaultTiming) => Promise<FaultWindow>;

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

/** Settles the cluster and closes the window of a fault injected at `injectedMs`. */
async function settled(cluster: Cluster, injectedMs: number): Promise<FaultWindow> {
  await settle(cluster);
  return { injectedMs, settledMs: performance.now() };
}

export const faults: Readonly<Record<string, Fault>> = {
  async killLeaderRestart(cluster, timing) {
    const { leader } = await followers(cluster);
    const injectedMs = performance.now();
    await leader.kill();
    await sleep(timing.holdMs);
    await leader.start();
    return settled(cluster, injectedMs);
  },
  async killFollowerRestart(cluster, timing) {
    const { followers: others } = await followers(cluster);
    const victim = pick(others);
    const injectedMs = performance.now();
    await victim.kill();
    await sleep(timing.holdMs);
    await victim.start();
    return settled(cluster, injectedMs);
  },
  async pauseLeader(cluster, timing) {
    const { leader } = await followers(cluster);
    const injectedMs = performance.now();
    leader.pause();
    await sleep(timing.holdMs);
    leader.resume();
    return settled(cluster, injectedMs);
  },
  async isolateLeader(cluster, timing) {
    const { leader, followers: others } = await followers(cluster);
    const injectedMs = performance.now();
    await cluster.partition([[leader], others]);
    await sleep(timing.holdMs);
    await cluster.heal();
    return settled(cluster, injectedMs);
  },
  /** A follower alone on one side: the majority keeps serving, the minority node answers 503. */
  async isolateFollower(cluster, timing) {
    const { followers: others } = await followers(cluster);
    const victim = pick(others);
    const injectedMs = performance.now();
    await cluster.partition([[victim], cluster.running().filter((node) => node !== victim)]);
    await sleep(timing.holdMs);
    await cluster.heal();
    return settled(cluster, injectedMs);
  },
  /** The leader keeps one follower, the rest form the majority (with 5 nodes: 2 against 3). */
  async splitLeaderInMinority(cluster, timing) {
    const { leader, followers: others } = await followers(cluster);
    // The largest minority of the whole cluster: 1 of 3, 2 of 5.
    const minoritySize = Math.floor(others.length / 2);
    const minority = [leader, ...others.slice(0, minoritySize - 1)];
    const majority = cluster.running().filter((node) => !minority.includes(node));
    const injectedMs = performance.now();
    await cluster.partition([minority, majority]);
    await sleep(timing.holdMs);
    await cluster.heal();
    return settled(cluster, injectedMs);
  },
  /** The leader can still hear its followers but nothing it sends arrives. */
  async leaderCannotSend(cluster, timing) {
    const { leader, followers: others } = await followers(cluster);
    const injectedMs = performance.now();
    await Promise.all([leader.setFaults(others.map((node) => node.id), []), ...others.map((node) => node.setFaults([], [leader.id]))]);
    await sleep(timing.holdMs);
    await cluster.heal();
    return settled(cluster, injectedMs);
  },
  /** The followers can no longer reach the leader, but hear it (CheckQuorum must depose it). */
  async leaderCannotHear(cluster, timing) {
    const { leader, followers: others } = await followers(cluster);
    const injectedMs = performance.now();
    await Promise.all([leader.setFaults([], others.map((node) => node.id)), ...others.map((node) => node.setFaults([leader.id], []))]);
    await sleep(timing.holdMs);
    await cluster.heal();
    return settled(cluster, injectedMs);
  },
  async killAllRestart(cluster, timing) {
    const injectedMs = performance.now();
    await cluster.killAll();
    await sleep(Math.min(timing.holdMs, 1_000));
    await Promise.all(cluster.nodes.map((node) => node.start()));
    return settled(cluster, injectedMs);
  },
};
