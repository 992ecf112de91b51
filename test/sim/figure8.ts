// A targeted nemesis for the Raft paper's Figure 8 (dissertation §3.6.2): the scenario in which
// a leader that commits an entry of an older term by counting replicas loses it later. Random
// faults reach that shape about once in a thousand seeds; this drives a 5-node cluster through
// it on purpose, with every choice (which follower, which side, how long) drawn from the seed.
//
// One round, each stage bounded by a deadline (on expiry the round is abandoned and healed):
//   1. minorityLeader: cut the leader L1 together with one follower F1 from the other three.
//      Clients keep writing to L1, so it appends entries only F1 gets.
//   2. secondMinority: the moment the other side elects L2 (before its first Ready is sent), cut
//      L2 with one of its voters A from the rest, so L2's entries - which conflict with L1's at
//      the same indexes - also reach only a minority. L1 and F1 rejoin the remaining node B.
//   3. catchUp: L1 or F1 becomes leader L3 of {L1, F1, B} and brings B up to date with L1's
//      old-term entries, page by page. The danger window is while a majority holds old-term
//      entries past the commit index but not yet L3's own first entry: a core that commits by
//      counting commits there. The nemesis watches the leader's progress and isolates L3 inside
//      that window (with a correct core nothing is committed, so the strike is harmless).
//   4. overwrite: L2 (or A), whose last term is higher than B's, wins with B's vote and replaces
//      those entries. A broken commit rule now trips "a committed entry never changes".

import type { LogIndex, NodeId, ProgressStatus, Term } from '../../src/raft/types.js';
import type { SimHost } from './host.js';
import type { Network } from './network.js';
import type { NemesisCluster, NemesisStats } from './nemesis.js';
import type { Prng } from './prng.js';
import type { Scheduler, VirtualMs } from './scheduler.js';
import type { Trace } from './trace.js';

/** The scenario needs two minorities of two and a swing node: exactly five voters. */
export const figure8VoterCount = 5;

/** Pause between rounds, so the healed cluster commits and clients see a stable leader again. */
const idleMsMin = 200;
const idleMsMax = 900;
/** How long stage 1 may wait for the majority side to elect a leader. */
const secondLeaderWaitMsMax = 1_500;
/** Stage 1 never ends before this: L1 needs time to append entries that only F1 gets. */
const minorityAppendMsMin = 60;
/** How long stage 2 may wait for {L1, F1, B} to elect a leader. */
const thirdLeaderWaitMsMax = 2_000;
/** How long stage 3 may watch the new leader catch B up before giving up. */
const catchUpWatchMsMax = 1_000;
/** Stage 4: how long the struck leader stays isolated while the others elect and replicate. */
const overwriteMsMin = 300;
const overwriteMsMax = 1_200;
/** How much longer stage 4 waits when the majority side has not elected a leader yet: three
 *  of five voters must all agree there, and split votes can take a while. */
const overwriteExtraMsMax = 1_500;

type Stage =
  | { readonly kind: 'idle'; readonly startAt: VirtualMs }
  | {
      readonly kind: 'minorityLeader';
      readonly minority: readonly NodeId[];
      readonly term: Term;
      /** The highest commit index of any node when the round began: with the leader cut off
       *  from the majority, nothing past it can commit until stage 3. */
      readonly commitAtStart: LogIndex;
      readonly since: VirtualMs;
    }
  | {
      readonly kind: 'secondMinority';
      readonly minority: readonly NodeId[];
      readonly term: Term;
      readonly commitAtStart: LogIndex;
      readonly since: VirtualMs;
    }
  | {
      readonly kind: 'catchUp';
      readonly leader: SimHost;
      readonly term: Term;
      /** Entries up to here may be committed for real; the window opens only beyond it. */
      readonly commitKnown: LogIndex;
      /** Index of the leader's empty entry: the first entry of its own term. */
      readonly ownTermStart: LogIndex;
      readonly since: VirtualMs;
    }
  | {
      readonly kind: 'overwrite';
      readonly until: VirtualMs;
      /** The cut-off nodes; the others must elect a leader of a term above `term`. */
      readonly holders: readonly NodeId[];
      readonly term: Term;
    };

export interface Figure8Stats {
  rounds: number;
  /** Rounds that reached the danger window and isolated the leader inside it. */
  strikes: number;
}

export class Figure8Nemesis {
  readonly stats: NemesisStats = { crashes: 0, partitions: 0, confChangesProposed: 0, transfers: 0, pauses: 0 };
  readonly figure8: Figure8Stats = { rounds: 0, strikes: 0 };
  private stage: Stage;

  constructor(
    private readonly cluster: NemesisCluster,
    private readonly network: Network,
    private readonly scheduler: Scheduler,
    private readonly random: Prng,
    private readonly trace: Trace,
  ) {
    this.stage = { kind: 'idle', startAt: this.random.between(idleMsMin, idleMsMax) };
  }

  step(): void {
    const now = this.scheduler.now;
    const stage = this.stage;
    switch (stage.kind) {
      case 'idle':
        if (now >= stage.startAt) this.startRound();
        return;
      case 'minorityLeader':
        return this.awaitSecondLeader(stage, now);
      case 'secondMinority':
        return this.awaitThirdLeader(stage, now);
      case 'catchUp':
        return this.watchCatchUp(stage, now);
      case 'overwrite': {
        if (now < stage.until) return;
        const rest = this.voters().filter((host) => !stage.holders.includes(host.id));
        if (this.coreLeader(rest, stage.term) !== undefined) this.endRound('overwrite phase over');
        else if (now >= stage.until + overwriteExtraMsMax) this.endRound('no leader on the majority side');
        return;
      }
    }
  }

  heal(): void {
    if (this.network.cutLinkCount > 0) this.trace.log('figure8: heal all partitions');
    this.network.heal();
  }

  private voters(): SimHost[] {
    return this.cluster.hosts().filter((host) => !host.decommissioned);
  }

  /** A host's role as its core sees it right now: the group's view lags until the next
   *  Ready, and stage 2 must strike before that Ready's messages arrive. */
  private coreLeader(hosts: readonly SimHost[], termAbove: Term): SimHost | undefined {
    return hosts.find((host) => {
      const status = host.status();
      return status !== undefined && status.softState.role === 'leader' && status.hardState.term > termAbove;
    });
  }

  private startRound(): void {
    const hosts = this.voters();
    const leader = this.coreLeader(hosts, 0);
    if (hosts.length !== figure8VoterCount || hosts.some((host) => !host.alive) || leader === undefined) {
      this.stage = { kind: 'idle', startAt: this.scheduler.now + idleMsMin };
      return;
    }
    const buddy = this.random.pick(hosts.filter((host) => host !== leader));
    const minority = [leader.id, buddy.id];
    const commitAtStart = Math.max(...hosts.map((host) => host.status()?.hardState.commit ?? 0));
    this.partition(minority);
    this.figure8.rounds++;
    this.stage = { kind: 'minorityLeader', minority, term: leader.currentTerm, commitAtStart, since: this.scheduler.now };
    this.trace.log(`figure8: round ${this.figure8.rounds}: leader ${leader.id} (term ${leader.currentTerm}) with ${buddy.id} cut from the rest`);
  }

  private awaitSecondLeader(stage: Extract<Stage, { kind: 'minorityLeader' }>, now: VirtualMs): void {
    if (now - stage.since > secondLeaderWaitMsMax) return this.endRound('no leader on the majority side');
    if (now - stage.since < minorityAppendMsMin) return;
    const majority = this.voters().filter((host) => !stage.minority.includes(host.id));
    const leader = this.coreLeader(majority, stage.term);
    if (leader === undefined) return;
    const ally = this.random.pick(majority.filter((host) => host !== leader));
    const minority = [leader.id, ally.id];
    this.partition(minority);
    this.stage = { kind: 'secondMinority', minority, term: leader.currentTerm, commitAtStart: stage.commitAtStart, since: now };
    this.trace.log(`figure8: ${leader.id} won term ${leader.currentTerm}; cut it with ${ally.id} before it replicates`);
  }

  private awaitThirdLeader(stage: Extract<Stage, { kind: 'secondMinority' }>, now: VirtualMs): void {
    if (now - stage.since > thirdLeaderWaitMsMax) return this.endRound('no leader among the rest');
    const rest = this.voters().filter((host) => !stage.minority.includes(host.id));
    const leader = this.coreLeader(rest, stage.term);
    const status = leader?.status();
    const ownTermStart = status?.progress?.get(leader!.id)?.match;
    if (leader === undefined || status === undefined || ownTermStart === undefined) return;
    const commitKnown = Math.max(stage.commitAtStart, status.hardState.commit);
    this.stage = { kind: 'catchUp', leader, term: status.hardState.term, commitKnown, ownTermStart, since: now };
    this.trace.log(`figure8: ${leader.id} leads term ${status.hardState.term} (commit ${commitKnown}, own entries from ${ownTermStart}); watching its catch-up`);
  }

  private watchCatchUp(stage: Extract<Stage, { kind: 'catchUp' }>, now: VirtualMs): void {
    if (now - stage.since > catchUpWatchMsMax) return this.endRound('catch-up window never opened');
    const status = stage.leader.status();
    if (status === undefined || status.softState.role !== 'leader' || status.hardState.term !== stage.term) {
      return this.endRound(`${stage.leader.id} lost leadership during catch-up`);
    }
    const voters = [...(status.progress ?? new Map<NodeId, ProgressStatus>())].filter(([, progress]) => !progress.isLearner);
    const quorumMatch = majorityMatch(voters.map(([, progress]) => progress.match));
    if (quorumMatch >= stage.ownTermStart) return this.endRound(`${stage.leader.id} got its own entry to a majority first`);
    if (quorumMatch <= stage.commitKnown) return;
    // A majority holds old-term entries beyond the commit index but not this term's entry:
    // strike. Whoever already holds this term's entry (the leader, perhaps one follower) goes
    // into the minority, so the majority side can only elect a node of the term in between,
    // which overwrites those old-term entries.
    const holders = voters.filter(([, progress]) => progress.match >= stage.ownTermStart).map(([id]) => id);
    this.partition(holders);
    this.figure8.strikes++;
    const overwriteMs = this.random.between(overwriteMsMin, overwriteMsMax);
    this.stage = { kind: 'overwrite', until: now + overwriteMs, holders, term: stage.term };
    this.trace.log(
      `figure8: a majority has ${stage.leader.id}'s old-term entries up to ${quorumMatch} (commit was ${stage.commitKnown}, own term from ${stage.ownTermStart}): cut [${holders.join(',')}] off for ${overwriteMs}ms`,
    );
  }

  /** Cut `group` from every other node, replacing whatever partition was in place. */
  private partition(group: readonly NodeId[]): void {
    this.network.heal();
    const others = this.voters().map((host) => host.id).filter((id) => !group.includes(id));
    this.network.cutBetween(group, others);
    this.stats.partitions++;
  }

  private endRound(reason: string): void {
    this.trace.log(`figure8: round ends (${reason})`);
    this.heal();
    this.stage = { kind: 'idle', startAt: this.scheduler.now + this.random.between(idleMsMin, idleMsMax) };
  }
}

/** The highest index a majority of voters has: with five voters, the third highest match. */
function majorityMatch(matches: readonly LogIndex[]): LogIndex {
  if (matches.length < figure8VoterCount) return 0;
  const sorted = [...matches].sort((a, b) => b - a);
  return sorted[Math.floor(sorted.length / 2)]!;
}
