// A node's side of the control plane: it heartbeats (who it is, how each of its groups
// stands), and hosts what the answer assigns it: a brand-new group bootstraps with its founding
// voters, any other joins empty and waits for its leader to add it. It leaves a group only when
// the control plane says the group no longer has it, never because an answer omits it (a
// control plane that lost its state must not make nodes delete theirs).
import type { Logger } from '../observability/logger.js';
import type { RequestGate } from '../security/request-gate.js';
import { deniedPerHeartbeatMax, heartbeatPath, type Directory, type HeartbeatRequest, type HeartbeatResponse, type NodeIdentity } from './control-protocol.js';
import type { NodeHost } from './node-host.js';
import { postJson } from './post-json.js';

/** Heartbeat period before the control plane has said otherwise. */
const defaultIntervalMs = 1_000;
/** A heartbeat that takes longer has failed; the next control address is tried. */
const heartbeatTimeoutMs = 3_000;
const retainEntriesDefault = 10_000;

export interface ControlAgentOptions {
  readonly node: NodeHost;
  readonly identity: NodeIdentity;
  /** Base URLs of control-plane members. */
  readonly controlUrls: readonly string[];
  readonly logger: Logger;
  /** Told of every directory the control plane sends. */
  readonly onDirectory?: (directory: Directory) => void;
  /** The node's request gate: it gets the credentials the control plane sends, and gives the
   *  refusals it recorded to the next heartbeat. */
  readonly gate: RequestGate;
  /** The Authorization header heartbeats carry (the cluster's system token); undefined: open. */
  readonly authorization: string | undefined;
}

export class ControlAgent {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private next = 0;
  private applying: Promise<void> = Promise.resolve();
  /** Failed heartbeats in a row (for the log: one line per outage, not per beat). */
  private failures = 0;
  private latest: Directory | undefined;
  /** A heartbeat is under way; `again`: send another as soon as it ends. */
  private beating = false;
  private again = false;

  constructor(private readonly options: ControlAgentOptions) {}

  start(): void {
    this.schedule(0);
  }

  /** Sends the next heartbeat now rather than at its interval (a replica's verdict on a staged
   *  version changed: the control plane decides the switch on it). */
  soon(): void {
    if (this.stopped || this.beating) {
      this.again = true;
      return;
    }
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.schedule(0);
  }

  /** The fleet as the control plane last described it (undefined before the first answer). */
  directory(): Directory | undefined {
    return this.latest;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.beat(), delayMs);
  }

  private async beat(): Promise<void> {
    const url = this.options.controlUrls[this.next % this.options.controlUrls.length] as string;
    let intervalMs = defaultIntervalMs;
    this.beating = true;
    this.again = false;
    try {
      const { gate } = this.options;
      const denied = gate.takeDenied(deniedPerHeartbeatMax);
      const revision = gate.revision();
      const body: HeartbeatRequest = { node: this.options.identity, groups: this.options.node.groupReports(), ...(revision === undefined ? {} : { credentialsRevision: revision }), ...(denied.length === 0 ? {} : { denied }) };
      const answer = (await postJson(`${url}${heartbeatPath}`, body, heartbeatTimeoutMs, this.options.authorization).catch((error: unknown) => {
        gate.giveBack(denied);
        throw error;
      })) as unknown as HeartbeatResponse;
      if (answer.credentials !== undefined) gate.update(answer.credentials);
      intervalMs = answer.intervalMs;
      this.latest = answer.directory;
      this.options.onDirectory?.(answer.directory);
      if (this.failures > 0) this.options.logger.info({ control: url, failures: this.failures }, 'control plane reachable again');
      this.failures = 0;
      this.applying = this.applying.then(() => this.follow(answer)).catch((error: unknown) => {
        this.options.logger.warn({ err: error }, 'could not follow the control plane');
      });
      await this.applying;
    } catch (error) {
      if (this.failures === 0) this.options.logger.warn({ err: error, control: url }, 'heartbeat failed');
      this.failures += 1;
      this.next += 1; // try the next member
    }
    this.beating = false;
    this.schedule(this.again && this.failures === 0 ? 0 : intervalMs);
  }

  private async follow(answer: HeartbeatResponse): Promise<void> {
    const { node } = this.options;
    node.addPeers(new Map(Object.entries(answer.peers)));
    for (const assignment of answer.assignments) {
      if (node.apps.has(assignment.app)) continue;
      this.options.logger.info({ app: assignment.app, bootstrapVoters: assignment.bootstrapVoters }, 'hosting an app the control plane assigned');
      await node.hostApp({ name: assignment.app, appDir: '', initialVoters: assignment.bootstrapVoters }, retainEntriesDefault);
    }
    for (const [name, hosted] of node.apps) hosted.host.validate(answer.validating?.find((entry) => entry.app === name)?.hash);
    for (const name of answer.release) {
      const hosted = node.apps.get(name);
      if (hosted === undefined || hosted.record.appDir !== '') continue;
      if (answer.assignments.some((assignment) => assignment.app === name)) continue;
      await node.leaveApp(name);
    }
  }
}
