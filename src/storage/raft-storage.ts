// The raft log and hard state of one group, kept in the group's own LMDB environment (for an
// app, src/storage/app-store.ts) so that the log, the state machine's tables and the applied
// index can change in one transaction and one fsync.
//
// Sub-databases:
//   raft:log   uint32 index -> StoredEntry {term, type, data}
//   raft:state 'hardState' | 'confState' | 'snapshot' | 'logStart' -> their records
//
// Write contract (pipelined writes): append/setHardState/setConfState/applySnapshot/compact
// change the in-memory view AT CALL TIME and queue their LMDB writes; `write(extra)` issues one
// write transaction holding everything queued so far plus `extra` (the state machine's apply),
// and resolves once it is durable. Transactions commit in the order they were issued, so a
// later durable write implies every earlier one is. Entries appended by a write that is not
// durable yet are served from memory (the tail) so that the core can read them back at once;
// `lastIndexDurable()` says how far the file reaches. If a write fails, memory is ahead of the
// file and the host must stop using this storage (a restart recovers from the file).
//
// Reads (the core's Storage interface) are synchronous: lmdb-js reads are.
import type { Database, RootDatabase } from 'lmdb';
import { BOOTSTRAP_INDEX, BOOTSTRAP_TERM, SnapshotOutOfDateError, emptyConfState } from '../raft/index.js';
import {
  CompactedError,
  NONE,
  UnavailableError,
  type ConfState,
  type Entry,
  type HardState,
  type LogIndex,
  type Snapshot,
  type SnapshotMetadata,
  type Storage,
  type Term,
} from '../raft/types.js';
import { assert, EMPTY_BYTES } from '../raft/util.js';
import { TermCache } from './raft-term-cache.js';

/** An entry as stored under its index (the index is the key). */
interface StoredEntry {
  readonly term: Term;
  readonly type: Entry['type'];
  readonly data: Uint8Array;
}

/** The last compacted position: the entry at `index` is gone but its term is still needed to
 *  match the entry after it (etcd's "dummy entry"). */
interface LogStart {
  readonly index: LogIndex;
  readonly term: Term;
}

type StateKey = 'hardState' | 'confState' | 'snapshot' | 'logStart';
type StateValue = HardState | ConfState | SnapshotMetadata | LogStart;

/** uint32 keys bound the log; a group that reaches it must be re-created from a snapshot. */
const logIndexMax = 0xffff_ffff;

/** Terms read into the cache on open: enough for the replication window right after a restart,
 *  without reading a long log at start-up. */
const termsLoadedOnOpenMax = 4096;

/** msgpack decodes binary as a Node Buffer (a copy lmdb-js owns); entries leave as plain
 *  Uint8Array views of it, without copying, so they compare and encode like the ones appended. */
function plainBytes(bytes: Uint8Array): Uint8Array {
  return Object.getPrototypeOf(bytes) === Uint8Array.prototype ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export const raftLogDbName = 'raft:log';
export const raftStateDbName = 'raft:state';

/** An appended entry whose write is not durable yet, with the write that carries it. */
interface TailEntry {
  readonly entry: Entry;
  readonly writeSequence: number;
}

/** Writes queued and not yet issued; bounded by the Ready sizes the core produces. */
type QueuedWrite = () => void;

export class LmdbRaftStorage implements Storage {
  private readonly root: RootDatabase;
  private readonly log: Database<StoredEntry, LogIndex>;
  private readonly state: Database<StateValue, StateKey>;
  private readonly terms = new TermCache();
  private logStart: LogStart;
  private last: LogIndex;
  private snapshotMetadata: SnapshotMetadata;
  /** Entries of writes that are not durable yet, contiguous, starting at tailStart. */
  private tail: TailEntry[] = [];
  private tailStart: LogIndex = 0;
  private queued: QueuedWrite[] = [];
  /** Sequence number of the last write issued, and of the last one known durable. */
  private writeSequence = 0;
  private durableSequence = 0;
  private durableLast: LogIndex;

  constructor(root: RootDatabase) {
    this.root = root;
    // Explicit encodings: the root's defaults belong to the state machine's store and could change.
    this.log = root.openDB<StoredEntry, LogIndex>({ name: raftLogDbName, keyEncoding: 'uint32', encoding: 'msgpack' });
    this.state = root.openDB<StateValue, StateKey>({ name: raftStateDbName, encoding: 'msgpack' });
    this.logStart = (this.state.get('logStart') as LogStart | undefined) ?? { index: 0, term: 0 };
    this.snapshotMetadata = (this.state.get('snapshot') as SnapshotMetadata | undefined) ?? {
      index: 0,
      term: 0,
      confState: emptyConfState(),
    };
    let last = this.logStart.index;
    for (const key of this.log.getKeys({ reverse: true, limit: 1 })) last = key;
    this.last = last;
    this.durableLast = last;
    assert(this.last >= this.logStart.index, `log ends at ${this.last} before its start ${this.logStart.index}`);
    this.loadRecentTerms();
  }

  /** Bootstraps a founding member of a new group, like MemoryStorage.bootstrap: the log starts
   *  after a snapshot at BOOTSTRAP_INDEX that holds the founding membership. Only on an empty
   *  storage; commits synchronously. */
  bootstrap(confState: ConfState): void {
    assert(this.last === 0 && this.snapshotMetadata.index === 0, 'bootstrap needs an empty storage');
    assert(this.queued.length === 0, 'bootstrap with writes queued');
    const metadata: SnapshotMetadata = { index: BOOTSTRAP_INDEX, term: BOOTSTRAP_TERM, confState };
    this.root.transactionSync(() => {
      this.putState('snapshot', metadata);
      this.putState('confState', confState);
      this.putState('logStart', { index: BOOTSTRAP_INDEX, term: BOOTSTRAP_TERM });
      this.putState('hardState', { term: BOOTSTRAP_TERM, vote: NONE, commit: BOOTSTRAP_INDEX });
    });
    this.snapshotMetadata = metadata;
    this.logStart = { index: BOOTSTRAP_INDEX, term: BOOTSTRAP_TERM };
    this.last = BOOTSTRAP_INDEX;
    this.durableLast = BOOTSTRAP_INDEX;
    this.terms.reset(BOOTSTRAP_INDEX + 1);
  }

  /** True when the log has never held anything: no bootstrap, no entry, no snapshot. */
  isEmpty(): boolean {
    return this.last === 0 && this.snapshotMetadata.index === 0 && this.state.get('hardState') === undefined;
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    const hardState = (this.state.get('hardState') as HardState | undefined) ?? { term: 0, vote: NONE, commit: 0 };
    const confState = (this.state.get('confState') as ConfState | undefined) ?? this.snapshotMetadata.confState;
    return { hardState, confState };
  }

  entries(lo: LogIndex, hi: LogIndex, maxBytes: number): Entry[] {
    if (lo <= this.logStart.index) throw new CompactedError(lo);
    if (hi > this.last + 1) throw new UnavailableError(hi - 1);
    assert(lo <= hi, `entries(${lo}, ${hi}) has lo > hi`);
    const result: Entry[] = [];
    let sizeBytes = 0;
    const fileEnd = this.tail.length > 0 ? Math.min(hi, this.tailStart) : hi;
    if (lo < fileEnd) {
      for (const { key, value } of this.log.getRange({ start: lo, end: fileEnd })) {
        assert(key === lo + result.length, `log has a gap: expected ${lo + result.length}, found ${key}`);
        sizeBytes += value.data.byteLength;
        // At least one entry, even one larger than the bound, so that replication progresses.
        if (result.length > 0 && sizeBytes > maxBytes) return result;
        result.push({ index: key, term: value.term, type: value.type, data: plainBytes(value.data) });
      }
      assert(result.length === fileEnd - lo, `log entries ${lo}..${fileEnd} missing from LMDB`);
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
    const cached = this.terms.get(index);
    if (cached !== undefined) return cached;
    if (this.tail.length > 0 && index >= this.tailStart) return (this.tail[index - this.tailStart] as TailEntry).entry.term;
    const stored = this.log.get(index);
    assert(stored !== undefined, `log entry ${index} missing from LMDB`);
    return stored.term;
  }

  firstIndex(): LogIndex {
    return this.logStart.index + 1;
  }

  lastIndex(): LogIndex {
    return this.last;
  }

  /** The last index whose entry is durable in the file (entries after it are still in flight).
   *  A leader sends nothing whose commit field exceeds it (see group/ready-loop.ts). */
  lastIndexDurable(): LogIndex {
    return Math.min(this.durableLast, this.last);
  }

  /** The latest snapshot's metadata. `data` is always empty: the host streams the state
   *  machine's state itself (its snapshot store) and fills it in, if at all, on its side. */
  snapshot(): Snapshot {
    return { metadata: this.snapshotMetadata, data: EMPTY_BYTES };
  }

  /** Appends a Ready's entries; entries at or after the first new index are replaced. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const incomingLast = entries[0]!.index + entries.length - 1;
    if (incomingLast < first) return; // entirely compacted away already
    const incoming = first > entries[0]!.index ? entries.slice(first - entries[0]!.index) : entries;
    const start = incoming[0]!.index;
    assert(start <= this.last + 1, `missing log entries before ${start} (last is ${this.last})`);
    assert(incomingLast <= logIndexMax, `log index ${incomingLast} exceeds the uint32 key space`);
    for (let i = 0; i < incoming.length; i++) assert(incoming[i]!.index === start + i, `append: entries not contiguous at ${incoming[i]!.index}`);
    const previousLast = this.last;
    const writeSequence = this.writeSequence + 1;
    this.queued.push(() => {
      // Entries past the new last one would otherwise survive the truncation.
      for (let index = incomingLast + 1; index <= previousLast; index++) this.log.removeSync(index);
      for (const entry of incoming) this.log.putSync(entry.index, { term: entry.term, type: entry.type, data: entry.data });
    });
    this.terms.truncateFrom(start);
    for (const entry of incoming) this.terms.append(entry.index, entry.term);
    // The tail: replace from `start` on, keep what comes before it.
    if (this.tail.length === 0 || start < this.tailStart) {
      this.tail = [];
      this.tailStart = start;
    } else {
      this.tail.length = start - this.tailStart;
    }
    for (const entry of incoming) this.tail.push({ entry, writeSequence });
    this.last = incomingLast;
    // A truncation reaches into the file: the file's last durable entry is no longer ours.
    if (start <= this.durableLast) this.durableLast = start - 1;
  }

  setHardState(hardState: HardState): void {
    this.queued.push(() => this.putState('hardState', hardState));
  }

  /** Records the membership the host's state machine reached (after applying a conf change),
   *  so that a restart resumes from it together with the applied index the host keeps. */
  setConfState(confState: ConfState): void {
    this.queued.push(() => this.putState('confState', confState));
  }

  /** A follower installed the leader's snapshot: the whole log is replaced by it. */
  applySnapshot(metadata: SnapshotMetadata): void {
    const current = this.snapshotMetadata.index;
    if (metadata.index <= current) throw new SnapshotOutOfDateError(metadata.index, current);
    const [from, to] = [this.firstIndex(), this.last];
    const logStart: LogStart = { index: metadata.index, term: metadata.term };
    this.queued.push(() => {
      for (let index = from; index <= to; index++) this.log.removeSync(index);
      this.putState('snapshot', metadata);
      this.putState('confState', metadata.confState);
      this.putState('logStart', logStart);
    });
    this.snapshotMetadata = metadata;
    this.logStart = logStart;
    this.last = metadata.index;
    this.durableLast = Math.min(this.durableLast, metadata.index);
    this.tail = [];
    this.terms.reset(metadata.index + 1);
  }

  /**
   * Drops the entries up to and including `index` once the state machine's snapshot described
   * by `snapshotMetadata` (at or after `index`) is saved; followers behind `index` then get that
   * snapshot. The entry at `index` keeps its term (logStart) for matching the next one. Only
   * durable entries may be compacted.
   */
  compact(index: LogIndex, snapshotMetadata: SnapshotMetadata): void {
    if (index <= this.logStart.index) throw new CompactedError(index);
    assert(index <= this.last, `compact ${index} is beyond last index ${this.last}`);
    assert(index <= this.lastIndexDurable(), `compact ${index} is beyond the durable log (${this.lastIndexDurable()})`);
    assert(snapshotMetadata.index >= index, `compact ${index} past the snapshot at ${snapshotMetadata.index}`);
    assert(snapshotMetadata.index <= this.last, `snapshot ${snapshotMetadata.index} beyond last index ${this.last}`);
    assert(
      snapshotMetadata.term === this.term(snapshotMetadata.index),
      `snapshot term ${snapshotMetadata.term} differs from the log's at ${snapshotMetadata.index}`,
    );
    const logStart: LogStart = { index, term: this.term(index) };
    const from = this.firstIndex();
    const newSnapshot = snapshotMetadata.index > this.snapshotMetadata.index;
    this.queued.push(() => {
      for (let i = from; i <= index; i++) this.log.removeSync(i);
      if (newSnapshot) this.putState('snapshot', snapshotMetadata);
      this.putState('logStart', logStart);
    });
    if (newSnapshot) this.snapshotMetadata = snapshotMetadata;
    this.logStart = logStart;
    this.terms.dropBefore(index + 1);
  }

  /** Whether writes are queued that no write() has issued yet. */
  hasQueuedWrites(): boolean {
    return this.queued.length > 0;
  }

  /**
   * Issues one write transaction with every queued write, then `extra` (inside the same
   * transaction: the state machine's apply), and resolves once it is durable. Writes commit in
   * the order they were issued.
   */
  write<T>(extra?: () => T): Promise<T | undefined> {
    const queued = this.queued;
    this.queued = [];
    const sequence = ++this.writeSequence;
    const lastAtIssue = this.last;
    return this.root
      .transaction(() => {
        for (const write of queued) write();
        return extra?.();
      })
      .then((value) => {
        this.markDurable(sequence, lastAtIssue);
        return value;
      });
  }

  /** Like write(), synchronously (start-up and tests); never while a write() is in flight. */
  writeSync<T>(extra?: () => T): T | undefined {
    assert(this.writeSequence === this.durableSequence, 'writeSync() while an asynchronous write is in flight');
    const queued = this.queued;
    this.queued = [];
    const sequence = ++this.writeSequence;
    const lastAtIssue = this.last;
    const value = this.root.transactionSync(() => {
      for (const write of queued) write();
      return extra?.();
    });
    this.markDurable(sequence, lastAtIssue);
    return value;
  }

  private markDurable(sequence: number, lastAtIssue: LogIndex): void {
    assert(sequence === this.durableSequence + 1, `write ${sequence} became durable after ${this.durableSequence}`);
    this.durableSequence = sequence;
    // Everything appended up to this write is in the file now (later appends may have replaced
    // part of it again: those stay in the tail, with their own write's sequence number).
    let drop = 0;
    while (drop < this.tail.length && (this.tail[drop] as TailEntry).writeSequence <= sequence) drop++;
    if (drop > 0) {
      this.tail = this.tail.slice(drop);
      this.tailStart += drop;
    }
    this.durableLast = this.tail.length > 0 ? this.tailStart - 1 : Math.max(this.durableLast, Math.min(lastAtIssue, this.last));
  }

  private putState(key: StateKey, value: StateValue): void {
    this.state.putSync(key, value);
  }

  /** Fills the term cache from the tail of the log after a (re)open. */
  private loadRecentTerms(): void {
    const from = Math.max(this.firstIndex(), this.last - termsLoadedOnOpenMax + 1);
    this.terms.reset(from);
    for (const { key, value } of this.log.getRange({ start: from, end: this.last + 1 })) {
      this.terms.append(key, value.term);
    }
    assert(this.terms.nextIndex() === this.last + 1, `log tail ${from}..${this.last} has gaps`);
  }
}
