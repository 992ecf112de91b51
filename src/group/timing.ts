// The knobs of a group's timing, with the defaults a node and `lockstep dev` start from.

export interface GroupTiming {
  /** Wall time of one Raft tick. */
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** How long a write or linearizable read waits for the group before it fails (503). */
  readonly requestTimeoutMs: number;
  /** Snapshot and compact the log every this many applied entries. */
  readonly snapshotEveryEntries: number;
  /** Entries kept in the log behind a snapshot. */
  readonly compactMarginEntries: number;
}

export const defaultGroupTiming: GroupTiming = {
  tickMs: 50,
  electionTicks: 10,
  heartbeatTicks: 1,
  requestTimeoutMs: 3_000,
  snapshotEveryEntries: 10_000,
  compactMarginEntries: 2_000,
};
