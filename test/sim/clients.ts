// Clients of the replicated key-value store and the history they observe. Each client runs one
// operation at a time: it sends it to the node it believes leads, follows "not leader" hints,
// retries (the same command: the state machine applies it once) after a refusal or an unknown
// outcome, and gives up after a virtual timeout. The history records what the client saw, in
// virtual time, for the linearizability checker.

import { NONE, type NodeId } from '../../src/raft/types.js';
import {
  UNKNOWN,
  type KvInput,
  type KvOperation,
  type KvOutput,
  type KvValue,
} from '../../src/testing/linearizability/index.js';
import type { ReadResponse, SimHost, WriteResponse } from './host.js';
import type { Prng } from './prng.js';
import type { Scheduler, VirtualMs } from './scheduler.js';
import type { Trace } from './trace.js';

export interface WorkloadOptions {
  readonly clientCount: number;
  readonly keys: readonly string[];
  /** Give up on an operation after this long: it is then recorded with an unknown outcome. */
  readonly timeoutMs: VirtualMs;
  readonly thinkMsMax: VirtualMs;
  readonly retryDelayMs: VirtualMs;
  /** One-way latency between a client and a node. */
  readonly latencyMsMax: VirtualMs;
  readonly readFraction: number;
  readonly casFraction: number;
  /** Chance that a read is sent to a random node instead of the presumed leader. */
  readonly readAnyNodeProbability: number;
}

interface InFlight {
  readonly seq: number;
  readonly input: KvInput;
  readonly callTime: VirtualMs;
  /** Per attempt, whether it may have reached the log: if any did, the operation may take
   *  effect even if we never hear. */
  readonly attemptsProposed: boolean[];
  done: boolean;
}

interface ClientState {
  readonly id: number;
  seq: number;
  current: InFlight | undefined;
  nextIssueAt: VirtualMs;
  leaderGuess: NodeId;
  /** Last value this client saw per key: what its CASes expect. */
  readonly lastSeen: Map<string, KvValue>;
}

export interface WorkloadStats {
  issued: number;
  completed: number;
  timedOut: number;
  abandoned: number;
  refusals: number;
  /** Attempts answered with an unknown outcome (then retried). */
  unknownAnswers: number;
}

export class Workload {
  readonly history: KvOperation[] = [];
  readonly stats: WorkloadStats = { issued: 0, completed: 0, timedOut: 0, abandoned: 0, refusals: 0, unknownAnswers: 0 };
  /** Clients stop starting operations when this is false; outstanding ones still finish. */
  issuing = true;
  private readonly clients: ClientState[] = [];

  constructor(
    private readonly options: WorkloadOptions,
    private readonly scheduler: Scheduler,
    private readonly random: Prng,
    private readonly hosts: () => readonly SimHost[],
    private readonly trace: Trace,
  ) {
    for (let id = 1; id <= options.clientCount; id++) {
      this.clients.push({ id, seq: 0, current: undefined, nextIssueAt: 0, leaderGuess: NONE, lastSeen: new Map() });
    }
  }

  get outstanding(): number {
    return this.clients.filter((client) => client.current !== undefined).length;
  }

  step(): void {
    if (!this.issuing) return;
    const now = this.scheduler.now;
    for (const client of this.clients) {
      if (client.current === undefined && now >= client.nextIssueAt) this.issue(client);
    }
  }

  private issue(client: ClientState): void {
    const options = this.options;
    client.seq++;
    const key = this.random.pick(options.keys);
    const value = `c${client.id}.${client.seq}`;
    const kind = this.random.float();
    let input: KvInput;
    if (kind < options.readFraction) input = { type: 'read', key };
    else if (kind < options.readFraction + options.casFraction) {
      input = { type: 'cas', key, expected: client.lastSeen.get(key) ?? null, value };
    } else input = { type: 'write', key, value };
    const operation: InFlight = { seq: client.seq, input, callTime: this.scheduler.now, attemptsProposed: [], done: false };
    client.current = operation;
    this.stats.issued++;
    this.scheduler.schedule(options.timeoutMs, () => this.timeOut(client, operation));
    this.attempt(client, operation);
  }

  private attempt(client: ClientState, operation: InFlight): void {
    const hosts = this.hosts().filter((host) => !host.decommissioned);
    // Linearizable reads may be served by any node (ReadIndex through the leader, then read
    // locally once applied), so reads often go to a random node rather than the leader.
    const anyNode = operation.input.type === 'read' && this.random.chance(this.options.readAnyNodeProbability);
    const target = (anyNode ? undefined : hosts.find((host) => host.id === client.leaderGuess)) ?? this.random.pick(hosts);
    const attempt = operation.attemptsProposed.length;
    operation.attemptsProposed.push(false);
    this.scheduler.schedule(this.latency(), () => {
      if (operation.done) return;
      const input = operation.input;
      if (input.type === 'read') {
        target.submitRead(input.key, (response: ReadResponse) => {
          if (response.kind === 'value') this.reply(client, operation, { type: 'read', value: response.value });
          else {
            this.stats.refusals++;
            this.retry(client, operation, target, response.leaderHint);
          }
        });
        return;
      }
      // From here on the attempt may take effect: the node may propose it now, or later (a
      // paused node serves what its socket buffered), until it says it refused.
      operation.attemptsProposed[attempt] = true;
      if (target.isLeader) client.leaderGuess = target.id;
      target.submitWrite({ clientId: client.id, seq: operation.seq, input }, (response: WriteResponse) => {
        if (response.kind === 'refused') {
          operation.attemptsProposed[attempt] = false;
          this.stats.refusals++;
          this.retry(client, operation, target, response.leaderHint);
        } else if (response.kind === 'unknown') {
          this.stats.unknownAnswers++;
          this.retry(client, operation, target, NONE);
        } else {
          this.reply(client, operation, response.output);
        }
      });
    });
  }

  /** The attempt failed (its answer travels back first): try again, following the hint. */
  private retry(client: ClientState, operation: InFlight, target: SimHost, leaderHint: NodeId): void {
    this.scheduler.schedule(this.latency() + this.options.retryDelayMs, () => {
      if (operation.done) return;
      client.leaderGuess = leaderHint !== target.id ? leaderHint : NONE;
      this.attempt(client, operation);
    });
  }

  private reply(client: ClientState, operation: InFlight, output: KvOutput): void {
    this.scheduler.schedule(this.latency(), () => {
      if (operation.done) return;
      operation.done = true;
      client.current = undefined;
      client.nextIssueAt = this.scheduler.now + this.random.int(this.options.thinkMsMax + 1);
      this.stats.completed++;
      const input = operation.input;
      if (output.type === 'read') client.lastSeen.set(input.key, output.value);
      else if (input.type !== 'read' && (output.type === 'write' || (output.type === 'cas' && output.ok))) {
        client.lastSeen.set(input.key, input.value);
      }
      this.history.push({
        clientId: client.id,
        input,
        callTime: operation.callTime,
        returnTime: this.scheduler.now,
        output,
      });
    });
  }

  private timeOut(client: ClientState, operation: InFlight): void {
    if (operation.done) return;
    operation.done = true;
    client.current = undefined;
    client.nextIssueAt = this.scheduler.now;
    client.leaderGuess = NONE;
    if (!operation.attemptsProposed.some((proposed) => proposed)) {
      // Every attempt was refused before reaching the log: it certainly took no effect.
      this.stats.abandoned++;
      return;
    }
    this.stats.timedOut++;
    this.trace.log(`client ${client.id} timed out on ${operation.input.type}(${operation.input.key}) seq ${operation.seq}`);
    this.history.push({
      clientId: client.id,
      input: operation.input,
      callTime: operation.callTime,
      returnTime: Number.POSITIVE_INFINITY,
      output: UNKNOWN,
    });
  }

  private latency(): VirtualMs {
    return this.random.between(1, this.options.latencyMsMax);
  }
}
