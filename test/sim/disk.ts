// The simulated disk of one node: an in-memory stand-in for the LMDB environment that holds a
// group's Raft log and its state machine's tables, with an honest account of durability.
//
// A write transaction goes through three stages:
//   issued       its function ran; later transactions see its writes (LMDB serialises writers)
//   acknowledged its promise resolves and readers outside a transaction see it (a commit)
//   durable      it is on the platter: it survives a crash
// An honest disk acknowledges a write once it is durable, in issue order, after a delay drawn
// from the seed (how long the fsync takes). A crash keeps only the platter: writes queued in
// the storage, issued or acknowledged but not durable, and the process's whole view are lost.
// A lying disk (a volatile write cache that acknowledges flushes) acknowledges at once and
// reaches the platter later: the planted bug the simulator must catch.
//
// Snapshot files live beside the environment and survive crashes as soon as they are written
// (the production snapshot store renames finished files into place).
import { assert } from '../../src/raft/util.js';
import type { Clock } from '../../src/group/clock.js';
import type { Scheduler, VirtualMs } from './scheduler.js';

export type TableKey = string | number;

type TableImage = Map<TableKey, unknown>;
type Image = Map<string, TableImage>;

type WriteOp =
  | { readonly kind: 'put'; readonly table: string; readonly key: TableKey; readonly value: unknown }
  | { readonly kind: 'remove'; readonly table: string; readonly key: TableKey }
  | { readonly kind: 'clear'; readonly table: string };

function tableOf(image: Image, name: string): TableImage {
  let table = image.get(name);
  if (table === undefined) {
    table = new Map();
    image.set(name, table);
  }
  return table;
}

function applyOps(image: Image, ops: readonly WriteOp[]): void {
  for (const op of ops) {
    const table = tableOf(image, op.table);
    if (op.kind === 'put') table.set(op.key, op.value);
    else if (op.kind === 'remove') table.delete(op.key);
    else table.clear();
  }
}

function cloneImage(image: Image): Image {
  return new Map([...image].map(([name, table]) => [name, new Map(table)]));
}

export interface DiskBehaviour {
  /** How long the fsync of a write just issued takes (writes still reach the platter in order). */
  syncDelayMs(): VirtualMs;
  /** A lying disk acknowledges every write at once; only the platter survives a crash. */
  readonly acknowledgesBeforeDurable: boolean;
}

/** Read access to one table of an image. */
export interface TableReader<K extends TableKey, V> {
  get(key: K): V | undefined;
  has(key: K): boolean;
  entries(): IterableIterator<[K, V]>;
}

function readerOf<K extends TableKey, V>(image: () => Image, name: string): TableReader<K, V> {
  const table = (): Map<K, V> => tableOf(image(), name) as Map<K, V>;
  return {
    get: (key) => table().get(key),
    has: (key) => table().has(key),
    entries: () => table().entries(),
  };
}

/** What survives a crash: the platter and the snapshot files. */
export class SimDisk {
  private platter: Image = new Map();
  readonly files = new Map<string, Uint8Array>();
  private current: DiskEnvironment | undefined;
  /** Most writes ever issued and not yet durable at once: how deep the host pipelined. */
  unsyncedWritesMax = 0;

  /** The durable content of a table, for the invariant checker (never read by the process). */
  durableTable<K extends TableKey, V>(name: string): TableReader<K, V> {
    return readerOf(() => this.platter, name);
  }

  /** A process opens the environment; the previous process's view (if any) is gone. */
  open(options: { readonly clock: Clock; readonly scheduler: Scheduler; readonly behaviour: DiskBehaviour }): DiskEnvironment {
    this.current?.close();
    this.current = new DiskEnvironment(cloneImage(this.platter), options.clock, options.scheduler, options.behaviour, (ops) => applyOps(this.platter, ops), (count) => {
      this.unsyncedWritesMax = Math.max(this.unsyncedWritesMax, count);
    });
    return this.current;
  }

  /** The process died: what it had not made durable is lost. */
  crash(): void {
    this.current?.close();
    this.current = undefined;
  }

  /** Writes issued and not yet on the platter: a crash now loses them. */
  get unsyncedWriteCount(): number {
    return this.current?.unsyncedWriteCount ?? 0;
  }
}

interface IssuedWrite {
  readonly sequence: number;
  readonly ops: readonly WriteOp[];
  readonly value: unknown;
  readonly resolve: (value: unknown) => void;
  readonly onDurable: (() => void) | undefined;
  durable: boolean;
  acknowledged: boolean;
}

/** One table as the process sees it: inside a write transaction the writer's view, outside it
 *  the acknowledged one. Writes only inside a transaction. */
export class EnvTable<K extends TableKey, V> implements TableReader<K, V> {
  constructor(
    private readonly env: DiskEnvironment,
    readonly name: string,
  ) {}

  get(key: K): V | undefined {
    return this.env.view(this.name).get(key) as V | undefined;
  }

  has(key: K): boolean {
    return this.env.view(this.name).has(key);
  }

  entries(): IterableIterator<[K, V]> {
    return this.env.view(this.name).entries() as IterableIterator<[K, V]>;
  }

  put(key: K, value: V): void {
    this.env.record({ kind: 'put', table: this.name, key, value });
  }

  remove(key: K): void {
    this.env.record({ kind: 'remove', table: this.name, key });
  }

  clear(): void {
    this.env.record({ kind: 'clear', table: this.name });
  }
}

/** One process's open environment: its view of the disk and the writes it has in flight. */
export class DiskEnvironment {
  /** Every issued write applied: what the next writer sees. */
  private readonly latest: Image;
  /** Acknowledged writes only: what readers see. */
  private readonly acknowledged: Image;
  private writing: WriteOp[] | undefined;
  private inFlight: IssuedWrite[] = [];
  private issuedSequence = 0;
  private acknowledgedSequence = 0;
  private durableSequence = 0;
  /** When the last issued write reaches the platter: fsyncs complete in issue order. */
  private lastDurableAtMs: VirtualMs = 0;
  private closed = false;

  constructor(
    platter: Image,
    private readonly clock: Clock,
    private readonly scheduler: Scheduler,
    private readonly behaviour: DiskBehaviour,
    private readonly persist: (ops: readonly WriteOp[]) => void,
    private readonly onIssued: (unsyncedCount: number) => void,
  ) {
    this.latest = platter;
    this.acknowledged = cloneImage(platter);
  }

  table<K extends TableKey, V>(name: string): EnvTable<K, V> {
    return new EnvTable<K, V>(this, name);
  }

  /** Names of the tables that hold something (inside a transaction: as the writer sees them). */
  tableNames(): string[] {
    return [...(this.writing !== undefined ? this.latest : this.acknowledged)].filter(([, table]) => table.size > 0).map(([name]) => name);
  }

  get unsyncedWriteCount(): number {
    return this.inFlight.filter((write) => !write.durable).length;
  }

  /** @internal the image a table read sees now. */
  view(name: string): TableImage {
    return tableOf(this.writing !== undefined ? this.latest : this.acknowledged, name);
  }

  /** @internal */
  record(op: WriteOp): void {
    assert(this.writing !== undefined, `write to ${op.table} outside a transaction`);
    this.writing.push(op);
    applyOps(this.latest, [op]);
  }

  /**
   * Runs `fn` as one write transaction now and resolves with its value once acknowledged.
   * `onDurable` runs when the write reaches the platter (the simulator's view, not the process's).
   */
  transaction<T>(fn: () => T, onDurable?: () => void): Promise<T> {
    if (this.closed) return new Promise<T>(() => undefined); // a dead process waits forever
    let ran: { readonly ops: WriteOp[]; readonly value: T };
    try {
      ran = this.run(fn);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return new Promise<T>((resolve) => {
      const write: IssuedWrite = {
        sequence: ++this.issuedSequence,
        ops: ran.ops,
        value: ran.value,
        resolve: resolve as (value: unknown) => void,
        onDurable,
        durable: false,
        acknowledged: false,
      };
      this.inFlight.push(write);
      this.onIssued(this.unsyncedWriteCount);
      const now = this.scheduler.now;
      this.lastDurableAtMs = Math.max(this.lastDurableAtMs, now + this.behaviour.syncDelayMs());
      this.scheduler.schedule(this.lastDurableAtMs - now, () => this.reachPlatter(write));
      // The process hears back on a later turn, like from lmdb-js's write thread.
      if (this.behaviour.acknowledgesBeforeDurable) this.clock.defer(() => this.acknowledge(write));
    });
  }

  /** Runs `fn` as one write transaction that is durable when it returns (start-up only). */
  transactionSync<T>(fn: () => T, onDurable?: () => void): T {
    assert(!this.closed, 'transactionSync on a closed environment');
    assert(this.inFlight.length === 0, 'transactionSync with writes in flight');
    const { ops, value } = this.run(fn);
    const sequence = ++this.issuedSequence;
    applyOps(this.acknowledged, ops);
    this.persist(ops);
    this.acknowledgedSequence = sequence;
    this.durableSequence = sequence;
    onDurable?.();
    return value;
  }

  close(): void {
    this.closed = true;
    this.inFlight = [];
  }

  private run<T>(fn: () => T): { readonly ops: WriteOp[]; readonly value: T } {
    assert(this.writing === undefined, 'nested write transaction');
    const ops: WriteOp[] = [];
    this.writing = ops;
    try {
      return { ops, value: fn() };
    } finally {
      this.writing = undefined;
    }
  }

  private reachPlatter(write: IssuedWrite): void {
    if (this.closed) return; // the crash came first
    assert(write.sequence === this.durableSequence + 1, `write ${write.sequence} reached the platter after ${this.durableSequence}`);
    this.durableSequence = write.sequence;
    write.durable = true;
    this.persist(write.ops);
    write.onDurable?.();
    if (!this.behaviour.acknowledgesBeforeDurable) this.clock.defer(() => this.acknowledge(write));
    this.forget();
  }

  private acknowledge(write: IssuedWrite): void {
    if (this.closed) return;
    assert(write.sequence === this.acknowledgedSequence + 1, `write ${write.sequence} acknowledged after ${this.acknowledgedSequence}`);
    this.acknowledgedSequence = write.sequence;
    write.acknowledged = true;
    applyOps(this.acknowledged, write.ops);
    write.resolve(write.value);
    this.forget();
  }

  private forget(): void {
    while (this.inFlight.length > 0 && this.inFlight[0]!.durable && this.inFlight[0]!.acknowledged) this.inFlight.shift();
  }
}
