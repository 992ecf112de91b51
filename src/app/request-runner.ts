// One request's transaction against an app, whoever makes it (REST, the expiry sweeper, later
// the control plane's checks and the client SDK's server side): the consistency waits, running
// the code against the committed local state, the bounded OCC rerun loop, the write entry built
// from the transaction, proposing it and waiting until it is applied on this node.
import type { IdempotencyRecord, RecordedResponse } from '../model/app-entries.js';
import type { LogIndex } from '../model/ids.js';
import { Problem } from '../model/problem.js';
import { rememberedKey } from '../state/idempotency.js';
import type { AppHost } from './app-host.js';
import type { AppRuntime } from './runtime.js';
import { Transaction } from './transaction.js';

/** Attempts of one request's code before it fails with a conflict (each conflict or version
 *  switch reruns it). */
export const writeAttemptsMax = 16;
/** How long a linearizable read waits for a quorum to confirm the read point. */
export const readIndexWaitMs = 5_000;
/** How long a request waits for a just-activated version to finish loading on this node. */
export const runtimeWaitMs = 5_000;
/** How long a request waits for a requested minimum index to be applied. */
export const minIndexWaitMs = 5_000;

export type Consistency = 'session' | 'linearizable' | 'stale';
export const consistencyLevels: readonly Consistency[] = ['session', 'linearizable', 'stale'];

/** What a request needs to have been applied on this node before its code runs. */
export interface ReadPoint {
  readonly consistency: Consistency;
  /** Session consistency: the highest index the client has seen (ignored when stale). */
  readonly minIndex?: LogIndex;
  /** How long to wait for `minIndex` (at most minIndexWaitMs, the default): a client that can
   *  try another node asks for a short wait. */
  readonly minIndexWaitMs?: number;
  /** The request only reads: a linearizable one takes a ReadIndex first (writes are
   *  linearizable through the log anyway). */
  readonly readOnly: boolean;
  /** Record versions the request compares against (If-Match): one this node has not applied
   *  yet may exist, so the runner takes a ReadIndex before judging it. */
  readonly comparesVersions?: readonly LogIndex[];
}

export interface Attempt {
  readonly runtime: AppRuntime;
  readonly transaction: Transaction;
}

export interface RunResult<T> {
  readonly value: T;
  readonly runtime: AppRuntime;
  readonly transaction: Transaction;
  /** The applied index the answer reflects: the write's index, or what this node had applied. */
  readonly index: LogIndex;
  /** The index of the entry the transaction wrote, when it wrote anything. */
  readonly writeIndex: LogIndex | undefined;
}

/** A request that carries an Idempotency-Key (see src/state/idempotency.ts). */
export interface IdempotentRequest<T> {
  /** The key, scoped by the caller. */
  readonly key: string;
  readonly fingerprint: string;
  /** How long the key is remembered after its write applies. */
  readonly windowMs: number;
  /** The answer the request gets if its write applies, from what the code returned. */
  readonly response: (value: T, runtime: AppRuntime) => RecordedResponse;
}

/** A run's end: the code's own result, or the remembered answer of an earlier request with the
 *  same Idempotency-Key (nothing was applied for this one). */
export type RunOutcome<T> = { readonly replayed: false; readonly run: RunResult<T> } | { readonly replayed: true; readonly record: IdempotencyRecord; readonly index: LogIndex };

/** What the caller may want to count. */
export interface RunnerHooks {
  proposed?(outcome: 'ok' | 'conflict' | 'version' | 'invalid' | 'key-reused' | 'replayed', seconds: number): void;
  retried?(reason: 'conflict' | 'version'): void;
}

export class RequestRunner {
  /**
   * @param dryRunOn a version to run against instead of the active one, without proposing
   *   anything: the transaction's writes are discarded (the app's checks run this way, against
   *   a staged version and this replica's state, without touching live traffic).
   * @param actor who asks (the authenticated identity): its writes carry it into the audit trail
   *   of tables declared @table(audit: true).
   */
  constructor(
    private readonly host: AppHost,
    private readonly hooks: RunnerHooks = {},
    private readonly dryRunOn?: AppRuntime,
    private readonly actor?: string,
  ) {}

  /** The active runtime, waiting (bounded) while a just-activated version loads. */
  async runtime(): Promise<AppRuntime> {
    if (this.dryRunOn !== undefined) return this.dryRunOn;
    const runtime = this.host.activeRuntime() ?? (await this.host.waitForRuntime(runtimeWaitMs));
    if (runtime === undefined) {
      throw new Problem('unavailable', { detail: `app ${this.host.name} has no active version on this node yet`, headers: { 'Retry-After': '1' } });
    }
    return runtime;
  }

  /** Waits until this node's state is recent enough for the request (bounded). */
  async reachReadPoint(point: ReadPoint): Promise<void> {
    const { host } = this;
    if (point.consistency !== 'stale' && point.minIndex !== undefined && point.minIndex > host.appliedIndex()) {
      const waitMs = Math.min(point.minIndexWaitMs ?? minIndexWaitMs, minIndexWaitMs);
      if (!(await host.waitForApplied(point.minIndex, waitMs))) {
        throw new Problem('unavailable', {
          type: 'index-not-reached',
          detail: `index ${point.minIndex} was not applied on this node within ${waitMs} ms (applied: ${host.appliedIndex()})`,
          headers: { 'Retry-After': '1' },
        });
      }
    }
    if (point.consistency === 'linearizable' && point.readOnly) {
      await host.readIndex(readIndexWaitMs);
      return;
    }
    // A record's version is the index of its last write, so a replica that has not applied the
    // named version yet cannot judge the condition: ReadIndex gives the commit point and waits
    // until it is applied here; a version beyond it does not exist anywhere yet.
    const compared = point.comparesVersions ?? [];
    if (compared.length > 0 && Math.max(...compared) > host.appliedIndex()) await host.readIndex(readIndexWaitMs);
  }

  /**
   * `run` for a request with an Idempotency-Key: a key this node already applied is answered
   * from its record without running the code. Otherwise the code runs and its entry carries the
   * key, so apply dedupes a retry that races its first attempt. Code that fails or writes
   * nothing may have run on a state from before the key's first write: then a ReadIndex brings
   * this node up to the commit point and the key is looked up once more before answering.
   */
  async runOnce<T>(request: IdempotentRequest<T>, code: (attempt: Attempt) => Promise<T>, nowMs: () => number = Date.now): Promise<RunOutcome<T>> {
    const { host } = this;
    const replay = (): RunOutcome<T> | undefined => {
      const record = rememberedKey(host.store, request.key, nowMs());
      if (record === undefined) return undefined;
      if (record.fingerprint !== request.fingerprint) {
        throw new Problem('unprocessable', { type: 'idempotency-key-reused', detail: `this Idempotency-Key was used by another request (applied at index ${record.index}); use a new key for a new request` });
      }
      return { replayed: true, record, index: host.appliedIndex() };
    };
    const known = replay();
    if (known !== undefined) return known;
    let result: RunResult<T> & { readonly replayOf?: IdempotencyRecord };
    try {
      result = await this.run(code, nowMs, request);
    } catch (error) {
      if (!(error instanceof Problem) || error.kind === 'unavailable' || this.dryRunOn !== undefined) throw error;
      await host.readIndex(readIndexWaitMs);
      const remembered = replay();
      if (remembered !== undefined) return remembered;
      throw error;
    }
    if (result.replayOf !== undefined) return { replayed: true, record: result.replayOf, index: result.index };
    if (result.writeIndex === undefined && this.dryRunOn === undefined) {
      await host.readIndex(readIndexWaitMs);
      return replay() ?? { replayed: false, run: result };
    }
    return { replayed: false, run: result };
  }

  /**
   * Runs `code` in a transaction against the committed local state and, if it wrote anything,
   * proposes the write set as one entry and waits until it is applied here. A conflict (a read
   * changed) or a version switch reruns the code, up to writeAttemptsMax times. Code that only
   * read is rerun if the active version changed while it ran, so no answer comes from old code.
   */
  async run<T>(code: (attempt: Attempt) => Promise<T>, nowMs: () => number = Date.now, idempotent?: IdempotentRequest<T>): Promise<RunResult<T> & { readonly replayOf?: IdempotencyRecord }> {
    const { host } = this;
    for (let attempt = 1; attempt <= writeAttemptsMax; attempt++) {
      const runtime = await this.runtime();
      const transaction = new Transaction(runtime, nowMs());
      const value = await code({ runtime, transaction });
      if (this.dryRunOn !== undefined) {
        // Nothing is proposed: a write is answered as if it became the next entry.
        const index = host.appliedIndex();
        return { value, runtime, transaction, index, writeIndex: transaction.hasWrites() ? index + 1 : undefined };
      }
      if (!transaction.hasWrites()) {
        if (host.activeRuntime() !== runtime) continue;
        return { value, runtime, transaction, index: host.appliedIndex(), writeIndex: undefined };
      }
      const started = performance.now();
      const ts = nowMs();
      const proposal = await host.propose({
        kind: 'write',
        version: runtime.version,
        reads: transaction.readDependencies(),
        writes: transaction.writeOps(),
        ts,
        ...(this.actor === undefined ? {} : { actor: this.actor }),
        ...(idempotent === undefined
          ? {}
          : { idempotency: { key: idempotent.key, fingerprint: idempotent.fingerprint, untilMs: ts + idempotent.windowMs, response: idempotent.response(value, runtime) } }),
      });
      const { result } = proposal;
      this.hooks.proposed?.(result.ok ? (result.replayOf === undefined ? 'ok' : 'replayed') : result.reason, (performance.now() - started) / 1000);
      if (result.ok && result.replayOf !== undefined) {
        return { value, runtime, transaction, index: proposal.index, writeIndex: result.replayOf.index, replayOf: result.replayOf };
      }
      if (result.ok) return { value, runtime, transaction, index: proposal.index, writeIndex: proposal.index };
      if (result.reason === 'invalid') throw new Problem('invalid', { detail: result.detail });
      if (result.reason === 'key-reused') throw new Problem('unprocessable', { type: 'idempotency-key-reused', detail: result.detail });
      this.hooks.retried?.(result.reason);
    }
    throw new Problem('conflict', { detail: `the transaction conflicted with concurrent writes ${writeAttemptsMax} times; try again` });
  }
}
