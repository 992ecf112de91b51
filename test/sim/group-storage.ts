// The Raft log of a simulated node: the GroupStorage contract of src/storage/raft-storage.ts
// (LmdbRaftStorage) over the simulated disk (disk.ts) instead of LMDB, built the same way so the
// production group host finds what it finds in production: changes reach memory at call time
// and queue their table writes; write() issues one transaction with everything queued plus the
// state machine's apply; entries of writes that are not acknowledged yet are served from the
// in-memory tail; lastIndexDurable() says how far the acknowledged log reaches.
//
// It also tells the simulator what it did, for the invariant checker: every hard state the
// host records (the live commit index) and, per write, what reached the platter.
import type { GroupStorage } from '../../src/group/types.js';
import {
  BOOTSTRAP_INDEX,
  BOOTSTRAP_TERM,
  CompactedError,
  NONE,
  SnapshotOutOfDateError,
  UnavailableError,
  emptyConfState,
  type ConfState,
  type Entry,
  type HardState,
  type LogIndex,
  type Snapshot,
  type SnapshotMetadata,
  type Storage,
  type Term,
} from '../../src/raft/index.js';
import { assert, EMPTY_BYTES, limitSize } from '../../src/raft/util.js';
import type { DiskEnvironment, EnvTable, SimDisk, TableReader } from './disk.js';

interface StoredEntry {
  readonly term: Term;
  readonly type: Entry['type'];
  readonly data: Uint8Array;
}

interface LogStart {
  readonly index: LogIndex;
  readonly term: Term;
}

type StateKey = 'hardState' | 'confState' | 'snapshot' | 'logStart';
type StateValue = HardState | ConfState | SnapshotMetadata | LogStart;

export const raftLogTable = 'raft:log';
export const raftStateTable = 'raft:state';

/** What one write put on the platter (what survives a crash), for the invariant checker. */
export interface PersistedWrite {
  readonly entries: readonly Entry[];
  readonly hardState: HardState | undefined;
  readonly snapshot: SnapshotMetadata | undefined;
}

export interface StorageObserver {
  /** The host recorded a hard state (at call time: the live core's). */
  hardStateSet(hardState: HardState): void;
  /** A write reached the platter. */
  persisted(write: PersistedWrite): void;
}

interface TailEntry {
  readonly entry: Entry;
  readonly writeSequence: number;
}

function toEntry(index: LogIndex, stored: StoredEntry): Entry {
  return { index, term: stored.term, type: stored.type, data: stored.data };
}

export class SimGroupStorage implements GroupStorage {
  private readonly log: EnvTable<LogIndex, StoredEntry>;
  private readonly state: EnvTable<StateKey, StateValue>;
  private logStart: LogStart;
  private last: LogIndex;
  private snapshotMetadata: SnapshotMetadata;
  private tail: TailEntry[] = [];
  private tailStart: LogIndex = 0;
  private queued: (() => void)[] = [];
  /** What the queued writes will persist, for the observer. */
  private queuedReport: { entries: Entry[]; hardState: HardState | undefined; snapshot: SnapshotMetadata | undefined } = {
    entries: [],
    hardState: undefined,
    snapshot: undefined,
  };
  private writeSequence = 0;
  private durableSequence = 0;
  private durableLast: LogIndex;
  /** The last hard state recorded (the live core's, as of its last Ready). */
  private hardStateNow: HardState;

  constructor(
    private readonly env: DiskEnvironment,
    private readonly observer: StorageObserver,
  ) {
    this.log = env.table(raftLogTable);
    this.state = env.table(raftStateTable);
    this.logStart = (this.state.get('logStart') as LogStart | undefined) ?? { index: 0, term: 0 };
    this.snapshotMetadata = (this.state.get('snapshot') as SnapshotMetadata | undefined) ?? { index: 0, term: 0, confState: emptyConfState() };
    let last = this.logStart.index;
    while (this.log.has(last + 1)) last++;
    this.last = last;
    this.durableLast = last;
    this.hardStateNow = this.initialState().hardState;
  }

  bootstrap(confState: ConfState): void {
    assert(this.last === 0 && this.snapshotMetadata.index === 0, 'bootstrap needs an empty storage');
    assert(this.queued.length === 0, 'bootstrap with writes queued');
    const metadata: SnapshotMetadata = { index: BOOTSTRAP_INDEX, term: BOOTSTRAP_TERM, confState };
    const hardState: HardState = { term: BOOTSTRAP_TERM, vote: NONE, commit: BOOTSTRAP_INDEX };
    this.env.transactionSync(
      () => {
        this.state.put('snapshot', metadata);
        this.state.put('confState', confState);
        this.state.put('logStart', { index: BOOTSTRAP_INDEX, term: BOOTSTRAP_TERM });
        this.state.put('hardState', hardState);
      },
      () => this.observer.persisted({ entries: [], hardState, snapshot: metadata }),
    );
    this.snapshotMetadata = metadata;
    this.logStart = { index: BOOTSTRAP_INDEX, term: BOOTSTRAP_TERM };
    this.last = BOOTSTRAP_INDEX;
    this.durableLast = BOOTSTRAP_INDEX;
    this.hardStateNow = hardState;
  }

  isEmpty(): boolean {
    return this.last === 0 && this.snapshotMetadata.index === 0 && this.state.get('hardState') === undefined;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    const hardState = (this.state.get('hardState') as HardState | undefined) ?? { term: 0, vote: NONE, commit: 0 };
    const confState = (this.state.get('confState') as ConfState | undefined) ?? this.snapshotMetadata.confState;
    return { hardState, confState };
  }

  /** The hard state last recorded, durable or not. */
  currentHardState(): HardState {
    return this.hardStateNow;
  }

  entries(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[] {
    if (lo <= this.logStart.index) throw new CompactedError(lo);
    if (hi > this.last + 1) throw new UnavailableError(hi - 1);
    assert(lo <= hi, `entries(${lo}, ${hi}) has lo > hi`);
    const result: Entry[] = [];
    let sizeBytes = 0;
    const fileEnd = this.tail.length > 0 ? Math.min(hi, this.tailStart) : hi;
    for (let index = lo; index < fileEnd; index++) {
      const stored = this.log.get(index);
      assert(stored !== undefined, `log entry ${index} missing from the disk`);
      sizeBytes += stored.data.byteLength;
      if (result.length > 0 && sizeBytes > maxBytes) return result;
      result.push(toEntry(index, stored));
    }
    for (let index = Math.max(lo, fileEnd); index < hi; index++) {
      const pending = this.tail[index - this.tailStart];
      assert(pending !== undefined, `log entry ${index} missing from the unwritten tail`);
      sizeBytes += pending.entry.data.byteLength;
      if (result.length > 0 && sizeBytes > maxBytes) break;
      result.push(pending.entry);
    }
    return result;
  }

  term(index: LogIndex): Term {
    if (index < this.logStart.index) throw new CompactedError(index);
    if (index === this.logStart.index) return this.logStart.term;
    if (index > this.last) throw new UnavailableError(index);
    if (this.tail.length > 0 && index >= this.tailStart) return (this.tail[index - this.tailStart] as TailEntry).entry.term;
    const stored = this.log.get(index);
    assert(stored !== undefined, `log entry ${index} missing from the disk`);
    return stored.term;
  }

  firstIndex(): LogIndex {
    return this.logStart.index + 1;
  }

  lastIndex(): LogIndex {
    return this.last;
  }

  lastIndexDurable(): LogIndex {
    return Math.min(this.durableLast, this.last);
  }

  snapshot(): Snapshot {
    return { metadata: this.snapshotMetadata, data: EMPTY_BYTES };
  }

  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const incomingLast = entries[0]!.index + entries.length - 1;
    if (incomingLast < first) return;
    const incoming = first > entries[0]!.index ? entries.slice(first - entries[0]!.index) : entries;
    const start = incoming[0]!.index;
    assert(start <= this.last + 1, `missing log entries before ${start} (last is ${this.last})`);
    for (let i = 0; i < incoming.length; i++) assert(incoming[i]!.index === start + i, `append: entries not contiguous at ${incoming[i]!.index}`);
    const previousLast = this.last;
    const writeSequence = this.writeSequence + 1;
    this.queued.push(() => {
      for (let index = incomingLast + 1; index <= previousLast; index++) this.log.remove(index);
      for (const entry of incoming) this.log.put(entry.index, { term: entry.term, type: entry.type, data: entry.data });
    });
    this.queuedReport.entries.push(...incoming);
    if (this.tail.length === 0 || start < this.tailStart) {
      this.tail = [];
      this.tailStart = start;
    } else {
      this.tail.length = start - this.tailStart;
    }
    for (const entry of incoming) this.tail.push({ entry, writeSequence });
    this.last = incomingLast;
    if (start <= this.durableLast) this.durableLast = start - 1;
  }

  setHardState(hardState: HardState): void {
    this.queued.push(() => this.state.put('hardState', hardState));
    this.queuedReport.hardState = hardState;
    this.hardStateNow = hardState;
    this.observer.hardStateSet(hardState);
  }

  setConfState(confState: ConfState): void {
    this.queued.push(() => this.state.put('confState', confState));
  }

  applySnapshot(metadata: SnapshotMetadata): void {
    const current = this.snapshotMetadata.index;
    if (metadata.index <= current) throw new SnapshotOutOfDateError(metadata.index, current);
    const [from, to] = [this.firstIndex(), this.last];
    const logStart: LogStart = { index: metadata.index, term: metadata.term };
    this.queued.push(() => {
      for (let index = from; index <= to; index++) this.log.remove(index);
      this.state.put('snapshot', metadata);
      this.state.put('confState', metadata.confState);
      this.state.put('logStart', logStart);
    });
    // Entries queued before the snapshot in this write are replaced by it.
    this.queuedReport = { entries: [], hardState: this.queuedReport.hardState, snapshot: metadata };
    this.snapshotMetadata = metadata;
    this.logStart = logStart;
    this.last = metadata.index;
    this.durableLast = Math.min(this.durableLast, metadata.index);
    this.tail = [];
  }

  compact(index: LogIndex, snapshotMetadata: SnapshotMetadata): void {
    if (index <= this.logStart.index) throw new CompactedError(index);
    assert(index <= this.last, `compact ${index} is beyond last index ${this.last}`);
    assert(index <= this.lastIndexDurable(), `compact ${index} is beyond the durable log (${this.lastIndexDurable()})`);
    assert(snapshotMetadata.index >= index, `compact ${index} past the snapshot at ${snapshotMetadata.index}`);
    assert(snapshotMetadata.index <= this.last, `snapshot ${snapshotMetadata.index} beyond last index ${this.last}`);
    assert(snapshotMetadata.term === this.term(snapshotMetadata.index), `snapshot term ${snapshotMetadata.term} differs from the log's at ${snapshotMetadata.index}`);
    const logStart: LogStart = { index, term: this.term(index) };
    const from = this.firstIndex();
    const newSnapshot = snapshotMetadata.index > this.snapshotMetadata.index;
    this.queued.push(() => {
      for (let i = from; i <= index; i++) this.log.remove(i);
      if (newSnapshot) this.state.put('snapshot', snapshotMetadata);
      this.state.put('logStart', logStart);
    });
    if (newSnapshot) this.snapshotMetadata = snapshotMetadata;
    this.logStart = logStart;
  }

  hasQueuedWrites(): boolean {
    return this.queued.length > 0;
  }

  write<T>(extra?: () => T): Promise<T | undefined> {
    const { queued, report } = this.takeQueued();
    const sequence = ++this.writeSequence;
    const lastAtIssue = this.last;
    return this.env
      .transaction(
        () => {
          for (const write of queued) write();
          return extra?.();
        },
        () => this.report(report),
      )
      .then((value) => {
        this.markDurable(sequence, lastAtIssue);
        return value;
      });
  }

  writeSync<T>(extra?: () => T): T | undefined {
    const { queued, report } = this.takeQueued();
    const sequence = ++this.writeSequence;
    const lastAtIssue = this.last;
    const value = this.env.transactionSync(
      () => {
        for (const write of queued) write();
        return extra?.();
      },
      () => this.report(report),
    );
    this.markDurable(sequence, lastAtIssue);
    return value;
  }

  private takeQueued(): { queued: (() => void)[]; report: PersistedWrite } {
    const queued = this.queued;
    const report = this.queuedReport;
    this.queued = [];
    this.queuedReport = { entries: [], hardState: undefined, snapshot: undefined };
    return { queued, report };
  }

  private report(write: PersistedWrite): void {
    if (write.entries.length > 0 || write.hardState !== undefined || write.snapshot !== undefined) this.observer.persisted(write);
  }

  private markDurable(sequence: number, lastAtIssue: LogIndex): void {
    assert(sequence === this.durableSequence + 1, `write ${sequence} became durable after ${this.durableSequence}`);
    this.durableSequence = sequence;
    let drop = 0;
    while (drop < this.tail.length && (this.tail[drop] as TailEntry).writeSequence <= sequence) drop++;
    if (drop > 0) {
      this.tail = this.tail.slice(drop);
      this.tailStart += drop;
    }
    this.durableLast = this.tail.length > 0 ? this.tailStart - 1 : Math.max(this.durableLast, Math.min(lastAtIssue, this.last));
  }
}

/**
 * A node's log as it is on the platter, read-only, for the invariant checker: what a crash now
 * would leave. The log is contiguous after its start, so the last index is found by probing
 * from the previous answer.
 */
export class DurableLog implements Storage {
  private readonly log: TableReader<LogIndex, StoredEntry>;
  private readonly state: TableReader<StateKey, StateValue>;
  private lastSeen: LogIndex = 0;

  constructor(disk: SimDisk) {
    this.log = disk.durableTable(raftLogTable);
    this.state = disk.durableTable(raftStateTable);
  }

  private start(): LogStart {
    return (this.state.get('logStart') as LogStart | undefined) ?? { index: 0, term: 0 };
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    const hardState = (this.state.get('hardState') as HardState | undefined) ?? { term: 0, vote: NONE, commit: 0 };
    const confState = (this.state.get('confState') as ConfState | undefined) ?? this.snapshot().metadata.confState;
    return { hardState, confState };
  }

  entries(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[] {
    if (lo <= this.start().index) throw new CompactedError(lo);
    if (hi > this.lastIndex() + 1) throw new UnavailableError(hi - 1);
    const result: Entry[] = [];
    for (let index = lo; index < hi; index++) result.push(toEntry(index, this.log.get(index)!));
    return limitSize(result, maxBytes);
  }

  term(index: LogIndex): Term {
    const start = this.start();
    if (index < start.index) throw new CompactedError(index);
    if (index === start.index) return start.term;
    const stored = this.log.get(index);
    if (stored === undefined) throw new UnavailableError(index);
    return stored.term;
  }

  firstIndex(): LogIndex {
    return this.start().index + 1;
  }

  lastIndex(): LogIndex {
    let last = Math.max(this.lastSeen, this.start().index);
    while (last > this.start().index && !this.log.has(last)) last--;
    while (this.log.has(last + 1)) last++;
    this.lastSeen = last;
    return last;
  }

  snapshot(): Snapshot {
    const metadata = (this.state.get('snapshot') as SnapshotMetadata | undefined) ?? { index: 0, term: 0, confState: emptyConfState() };
    return { metadata, data: EMPTY_BYTES };
  }
}
