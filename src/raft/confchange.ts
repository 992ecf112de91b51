// Membership transitions (Raft dissertation §4.3): simple changes that alter at most one voter,
// and joint consensus for anything bigger. Each operation builds a new config and progress map
// from copies and checks the invariants, so a rejected change leaves the tracker untouched.
import { Inflights } from './inflights.js';
import { Progress } from './progress.js';
import { cloneTrackerConfig, isJoint, type ProgressMap, type TrackerConfig } from './tracker.js';
import type { ConfChange, ConfChangeSingle, ConfState, LogIndex, NodeId } from './types.js';

export class ConfChangeError extends Error {
  constructor(reason: string) {
    super(`invalid conf change: ${reason}`);
  }
}

export interface ChangerInput {
  readonly config: TrackerConfig;
  readonly progress: ReadonlyMap<NodeId, Progress>;
  readonly inflightCountMax: number;
  readonly inflightBytesMax: number;
  /** The leader's last index: new members are probed from there. */
  readonly lastIndex: LogIndex;
}

export interface ChangerResult {
  readonly config: TrackerConfig;
  readonly progress: ProgressMap;
}

/** How a ConfChange is carried out (etcd's ConfChangeV2.EnterJoint / LeaveJoint). */
export function confChangeKind(change: ConfChange): { kind: 'leaveJoint' } | { kind: 'enterJoint'; autoLeave: boolean } | { kind: 'simple' } {
  if (change.changes.length === 0 && change.transition === 'auto') return { kind: 'leaveJoint' };
  if (change.transition !== 'auto' || change.changes.length > 1) {
    return { kind: 'enterJoint', autoLeave: change.transition !== 'joint' };
  }
  return { kind: 'simple' };
}

class Changer {
  private readonly input: ChangerInput;
  readonly config: TrackerConfig;
  readonly progress: ProgressMap;

  constructor(input: ChangerInput) {
    this.input = input;
    this.config = cloneTrackerConfig(input.config);
    // Progress objects are cloned on write (see own()), so the live tracker is never mutated.
    this.progress = new Map(input.progress);
    checkInvariants(this.config, this.progress);
  }

  private own(id: NodeId): Progress | undefined {
    const progress = this.progress.get(id);
    if (progress === undefined || progress !== this.input.progress.get(id)) return progress;
    const copy = progress.clone();
    this.progress.set(id, copy);
    return copy;
  }

  apply(changes: readonly ConfChangeSingle[]): void {
    for (const change of changes) {
      switch (change.type) {
        case 'addNode':
          this.makeVoter(change.nodeId);
          break;
        case 'addLearner':
          this.makeLearner(change.nodeId);
          break;
        case 'removeNode':
          this.remove(change.nodeId);
          break;
      }
    }
    if (this.config.voters.incoming.size === 0) throw new ConfChangeError('removed all voters');
  }

  private makeVoter(id: NodeId): void {
    const progress = this.own(id);
    if (progress === undefined) {
      this.initProgress(id, false);
      return;
    }
    progress.isLearner = false;
    this.config.learners.delete(id);
    this.config.learnersNext.delete(id);
    this.config.voters.incoming.add(id);
  }

  private makeLearner(id: NodeId): void {
    const progress = this.own(id);
    if (progress === undefined) {
      this.initProgress(id, true);
      return;
    }
    if (progress.isLearner) return;
    this.remove(id);
    this.progress.set(id, progress); // keep what we know of its log
    if (this.config.voters.outgoing.has(id)) {
      // Still a voter of the outgoing half: it can only become a learner when that half goes.
      this.config.learnersNext.add(id);
    } else {
      progress.isLearner = true;
      this.config.learners.add(id);
    }
  }

  private remove(id: NodeId): void {
    if (!this.progress.has(id)) return;
    this.config.voters.incoming.delete(id);
    this.config.learners.delete(id);
    this.config.learnersNext.delete(id);
    if (!this.config.voters.outgoing.has(id)) this.progress.delete(id);
  }

  private initProgress(id: NodeId, isLearner: boolean): void {
    if (isLearner) this.config.learners.add(id);
    else this.config.voters.incoming.add(id);
    this.progress.set(
      id,
      new Progress({
        match: 0,
        next: Math.max(this.input.lastIndex, 1),
        inflights: new Inflights(this.input.inflightCountMax, this.input.inflightBytesMax),
        isLearner,
        // A new member counts as active so that CheckQuorum does not depose the leader
        // before the member had a chance to answer.
        recentActive: true,
      }),
    );
  }

  result(): ChangerResult {
    checkInvariants(this.config, this.progress);
    return { config: this.config, progress: this.progress };
  }
}

function checkInvariants(config: TrackerConfig, progress: ReadonlyMap<NodeId, Progress>): void {
  const members = [...config.voters.incoming, ...config.voters.outgoing, ...config.learners, ...config.learnersNext];
  for (const id of members) {
    if (!progress.has(id)) throw new ConfChangeError(`no progress for ${id}`);
  }
  for (const id of config.learnersNext) {
    if (!config.voters.outgoing.has(id)) throw new ConfChangeError(`${id} is in learnersNext but not an outgoing voter`);
    if (progress.get(id)!.isLearner) throw new ConfChangeError(`${id} is in learnersNext but already a learner`);
  }
  for (const id of config.learners) {
    if (config.voters.outgoing.has(id) || config.voters.incoming.has(id)) {
      throw new ConfChangeError(`${id} is both a learner and a voter`);
    }
    if (!progress.get(id)!.isLearner) throw new ConfChangeError(`${id} is a learner without learner progress`);
  }
  if (!isJoint(config)) {
    if (config.learnersNext.size > 0) throw new ConfChangeError('learnersNext outside a joint config');
    if (config.autoLeave) throw new ConfChangeError('autoLeave outside a joint config');
  }
}

export function enterJoint(input: ChangerInput, autoLeave: boolean, changes: readonly ConfChangeSingle[]): ChangerResult {
  const changer = new Changer(input);
  if (isJoint(changer.config)) throw new ConfChangeError('config is already joint');
  if (changer.config.voters.incoming.size === 0) throw new ConfChangeError('cannot make a zero-voter config joint');
  for (const id of changer.config.voters.incoming) changer.config.voters.outgoing.add(id);
  changer.apply(changes);
  changer.config.autoLeave = autoLeave;
  return changer.result();
}

export function leaveJoint(input: ChangerInput): ChangerResult {
  const changer = new Changer(input);
  const config = changer.config;
  if (!isJoint(config)) throw new ConfChangeError('cannot leave a non-joint config');
  for (const id of config.learnersNext) {
    config.learners.add(id);
    const copy = changer.progress.get(id)!.clone();
    copy.isLearner = true;
    changer.progress.set(id, copy);
  }
  config.learnersNext.clear();
  for (const id of config.voters.outgoing) {
    if (!config.voters.incoming.has(id) && !config.learners.has(id)) changer.progress.delete(id);
  }
  config.voters.outgoing.clear();
  config.autoLeave = false;
  return changer.result();
}

export function simpleChange(input: ChangerInput, changes: readonly ConfChangeSingle[]): ChangerResult {
  const changer = new Changer(input);
  if (isJoint(changer.config)) throw new ConfChangeError('cannot apply a simple change in a joint config');
  changer.apply(changes);
  const before = input.config.voters.incoming;
  const after = changer.config.voters.incoming;
  let changedVoters = 0;
  for (const id of before) if (!after.has(id)) changedVoters++;
  for (const id of after) if (!before.has(id)) changedVoters++;
  if (changedVoters > 1) throw new ConfChangeError('more than one voter changed without entering a joint config');
  return changer.result();
}

/** Applies a ConfChange to `input` the way its kind demands. */
export function applyConfChangeTo(input: ChangerInput, change: ConfChange): ChangerResult {
  const kind = confChangeKind(change);
  switch (kind.kind) {
    case 'leaveJoint':
      return leaveJoint(input);
    case 'enterJoint':
      return enterJoint(input, kind.autoLeave, change.changes);
    case 'simple':
      return simpleChange(input, change.changes);
  }
}

/**
 * Rebuilds a tracker configuration from a ConfState (at start-up and on snapshot restore) by
 * replaying it as changes from an empty config. A joint ConfState is reached by first making
 * the outgoing voters the active config, then entering the joint config towards the incoming one.
 */
export function restoreConfState(input: ChangerInput, confState: ConfState): ChangerResult {
  let current: ChangerInput = input;
  const step = (result: ChangerResult): void => {
    current = { ...current, config: result.config, progress: result.progress };
  };
  if (confState.votersOutgoing.length === 0) {
    for (const id of confState.voters) step(simpleChange(current, [{ type: 'addNode', nodeId: id }]));
    for (const id of confState.learners) step(simpleChange(current, [{ type: 'addLearner', nodeId: id }]));
  } else {
    for (const id of confState.votersOutgoing) step(simpleChange(current, [{ type: 'addNode', nodeId: id }]));
    const incoming: ConfChangeSingle[] = [
      ...confState.votersOutgoing.map((id): ConfChangeSingle => ({ type: 'removeNode', nodeId: id })),
      ...confState.voters.map((id): ConfChangeSingle => ({ type: 'addNode', nodeId: id })),
      ...confState.learners.map((id): ConfChangeSingle => ({ type: 'addLearner', nodeId: id })),
      ...confState.learnersNext.map((id): ConfChangeSingle => ({ type: 'addLearner', nodeId: id })),
    ];
    step(enterJoint(current, confState.autoLeave, incoming));
  }
  return { config: current.config, progress: new Map(current.progress) };
}
