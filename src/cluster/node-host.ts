// A node process of a cluster: it hosts one Raft group per app (multi-raft) over one gRPC
// transport, ticks them, answers forwarded proposals and ReadIndex requests for the groups it
// leads, and deploys an app's bundle when it leads that app's group.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { AppHost, type ReplicatedLog } from '../app/app-host.js';
import { readBundle } from '../app/bundle.js';
import type { Logger } from '../observability/logger.js';
import type { ClusterMetrics } from '../observability/metrics.js';
import type { ConfChange, ConfState, Message, NodeId } from '../raft/index.js';
import type { LogEntry } from '../state/entries.js';
import { ClusterUnavailableError, type GroupTransport } from './group-transport.js';
import { RaftGroup } from './raft-group.js';
import { Transport } from './transport.js';

export interface ClusterTiming {
  /** Wall time of one Raft tick. */
  readonly tickMs: number;
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** How long a write or linearizable read waits for the cluster before 503. */
  readonly requestTimeoutMs: number;
  readonly snapshotEveryEntries: number;
  readonly compactMarginEntries: number;
}

export const defaultTiming: ClusterTiming = {
  tickMs: 50,
  electionTicks: 10,
  heartbeatTicks: 1,
  requestTimeoutMs: 3_000,
  snapshotEveryEntries: 10_000,
  compactMarginEntries: 2_000,
};

export interface NodeHostOptions {
  readonly nodeId: NodeId;
  readonly region: string;
  readonly zone?: string;
  readonly dataDir: string;
  /** host:port this node's gRPC server listens on. */
  readonly grpcAddress: string;
  readonly faultInjection: boolean;
  readonly timing: ClusterTiming;
  readonly logger: Logger;
  readonly metrics: ClusterMetrics;
}

/** What a node remembers about an app it hosts, so a restart needs no flags. */
export interface HostedAppRecord {
  readonly name: string;
  readonly appDir: string;
  /** Founding voters (static bootstrap); empty when the node joined as a learner. */
  readonly initialVoters: readonly NodeId[];
}

interface NodeRecord {
  readonly nodeId: NodeId;
  readonly region: string;
  readonly zone?: string;
  readonly peers: Record<NodeId, string>;
  readonly apps: HostedAppRecord[];
}

interface HostedApp {
  readonly record: HostedAppRecord;
  readonly host: AppHost;
  readonly group: RaftGroup;
}

const packr = new Packr({ useRecords: false, moreTypes: false });
/** How often a leader compares its app's bundle on disk with the active version. */
const deployCheckIntervalMs = 1_000;

export class NodeHost {
  readonly apps = new Map<string, HostedApp>();
  readonly transport: Transport;
  private readonly peers = new Map<NodeId, string>();
  private tickTimer: NodeJS.Timeout | undefined;
  private deployTimer: NodeJS.Timeout | undefined;
  private deploying = false;

  constructor(private readonly options: NodeHostOptions) {
    mkdirSync(options.dataDir, { recursive: true });
    const saved = this.readRecord();
    if (saved !== undefined) {
      if (saved.nodeId !== options.nodeId) throw new Error(`data directory belongs to node ${saved.nodeId}, not ${options.nodeId}`);
      for (const [id, address] of Object.entries(saved.peers)) this.peers.set(id, address);
    }
    this.transport = new Transport({
      nodeId: options.nodeId,
      listenAddress: options.grpcAddress,
      peers: this.peers,
      faultInjection: options.faultInjection,
      logger: options.logger,
      handlers: {
        onMessages: (groupId, messages) => this.apps.get(groupId)?.group.receive(messages),
        onReadIndex: (groupId, deadlineMs) => this.requireGroup(groupId).readIndexHere(deadlineMs),
        onSnapshot: (groupId, metadata, data) => this.requireGroup(groupId).receiveSnapshot(packr.unpack(metadata) as Message, data),
      },
    });
  }

  private wireUnreachable(): void {
    this.transport.onUnreachable = (groupId, peer) => this.apps.get(groupId)?.group.reportUnreachable(peer);
  }

  nodeId(): NodeId {
    return this.options.nodeId;
  }

  peerAddresses(): Record<NodeId, string> {
    return Object.fromEntries(this.peers);
  }

  savedApps(): readonly HostedAppRecord[] {
    return this.readRecord()?.apps ?? [];
  }

  private requireGroup(groupId: string): RaftGroup {
    const app = this.apps.get(groupId);
    if (app === undefined) throw new ClusterUnavailableError(`node ${this.options.nodeId} hosts no group ${groupId}`);
    return app.group;
  }

  /** Adds peers (id -> gRPC address) this node talks to; remembered across restarts. */
  addPeers(peers: ReadonlyMap<NodeId, string>): void {
    for (const [id, address] of peers) {
      if (id === this.options.nodeId) continue;
      if (this.peers.get(id) === address) continue;
      this.peers.set(id, address);
      this.transport.addPeer(id, address);
    }
    this.writeRecord();
  }

  async start(): Promise<void> {
    this.wireUnreachable();
    await this.transport.start();
    this.tickTimer = setInterval(() => {
      for (const app of this.apps.values()) app.group.tick();
    }, this.options.timing.tickMs);
    this.deployTimer = setInterval(() => void this.deployWhereLeading(), deployCheckIntervalMs);
  }

  /** Hosts an app's group: recovers it from disk, or bootstraps it with `initialVoters`. */
  async hostApp(record: HostedAppRecord, retainEntries: number): Promise<AppHost> {
    const existing = this.apps.get(record.name);
    if (existing !== undefined) return existing.host;
    const saved = this.savedApps().find((app) => app.name === record.name);
    const effective = saved ?? record;
    let group: RaftGroup | undefined;
    const dataDir = join(this.options.dataDir, 'apps', effective.name);
    const host = await AppHost.open({
      name: effective.name,
      dataDir,
      sourceDir: effective.appDir,
      retainEntries,
      logger: this.options.logger,
      replication: (parts): ReplicatedLog => {
        group = new RaftGroup({
          groupId: effective.name,
          nodeId: this.options.nodeId,
          store: parts.store,
          stateMachine: parts.stateMachine,
          transport: this.groupTransport(),
          logger: this.options.logger.child({ group: effective.name }),
          metrics: this.options.metrics.forGroup(effective.name),
          onCommit: parts.onCommit,
          onSnapshotInstalled: parts.onSnapshotInstalled,
          initialVoters: effective.initialVoters,
          dataDir,
          electionTicks: this.options.timing.electionTicks,
          heartbeatTicks: this.options.timing.heartbeatTicks,
          snapshotEveryEntries: this.options.timing.snapshotEveryEntries,
          compactMarginEntries: this.options.timing.compactMarginEntries,
        });
        const raftGroup = group;
        const timeoutMs = this.options.timing.requestTimeoutMs;
        return {
          propose: (entry: LogEntry) => raftGroup.propose(entry, timeoutMs),
          readIndex: (readTimeoutMs: number) => raftGroup.readIndex(Math.min(readTimeoutMs, timeoutMs)),
          canDeploy: () => raftGroup.isLeader(),
          healthy: () => raftGroup.healthy(),
          close: () => raftGroup.stop(),
        };
      },
    });
    if (group === undefined) throw new Error('replication factory was not called');
    this.apps.set(effective.name, { record: effective, host, group });
    if (saved === undefined) this.writeRecord();
    return host;
  }

  /** A leader makes the active version match its app directory (static deploys for now). */
  private async deployWhereLeading(): Promise<void> {
    if (this.deploying) return;
    this.deploying = true;
    try {
      for (const app of this.apps.values()) {
        if (!app.group.isLeader() || app.record.appDir === '') continue;
        let bundle;
        try {
          bundle = await readBundle(app.record.appDir);
        } catch (error) {
          this.options.logger.warn({ err: error, app: app.record.name }, 'cannot read app directory');
          continue;
        }
        if (app.host.activeRuntime()?.hash === bundle.hash) continue;
        const outcome = await app.host.deploy(bundle).catch((error: unknown) => {
          this.options.logger.warn({ err: error, app: app.record.name }, 'deploy failed');
          return undefined;
        });
        if (outcome !== undefined && outcome.status !== 'unchanged') this.options.logger.info({ app: app.record.name, outcome }, 'deploy');
      }
    } finally {
      this.deploying = false;
    }
  }

  private groupTransport(): GroupTransport {
    return {
      send: (groupId, messages) => this.transport.send(groupId, messages),
      readIndex: (leaderId, groupId, timeoutMs) => this.transport.readIndex(leaderId, groupId, timeoutMs),
      sendSnapshot: (groupId, message, data) => this.transport.sendSnapshot(message.to, groupId, packr.pack(message), data),
      waitForApplied: (groupId, index, timeoutMs) => this.apps.get(groupId)?.host.waitForApplied(index, timeoutMs) ?? Promise.resolve(false),
      membershipChanged: (groupId, change, confState) => this.onMembershipChanged(groupId, change, confState),
    };
  }

  private onMembershipChanged(groupId: string, change: ConfChange, confState: ConfState): void {
    if (change.context !== undefined && change.context.byteLength > 0) {
      try {
        const addresses = JSON.parse(Buffer.from(change.context).toString('utf8')) as Record<NodeId, string>;
        this.addPeers(new Map(Object.entries(addresses)));
      } catch (error) {
        this.options.logger.warn({ err: error, group: groupId }, 'membership change context is not an address map');
      }
    }
    this.options.logger.info({ group: groupId, confState }, 'membership changed');
  }

  private readRecord(): NodeRecord | undefined {
    const path = join(this.options.dataDir, 'node.json');
    if (!existsSync(path)) return undefined;
    return JSON.parse(readFileSync(path, 'utf8')) as NodeRecord;
  }

  private writeRecord(): void {
    const record: NodeRecord = {
      nodeId: this.options.nodeId,
      region: this.options.region,
      ...(this.options.zone === undefined ? {} : { zone: this.options.zone }),
      peers: Object.fromEntries(this.peers),
      apps: [...this.apps.values()].map((app) => app.record),
    };
    const path = join(this.options.dataDir, 'node.json');
    writeFileSync(`${path}.tmp`, JSON.stringify(record, null, 2));
    // rename is atomic: a crash leaves the old record or the new one, never half of one.
    renameSync(`${path}.tmp`, path);
  }

  /** Term, commit index and leadership of every group, for metrics. */
  groupGauges(): { name: string; term: number; commitIndex: number; isLeader: boolean }[] {
    return [...this.apps.values()].map((app) => {
      const status = app.group.status();
      return { name: app.record.name, term: status.hardState.term, commitIndex: status.hardState.commit, isLeader: app.group.isLeader() };
    });
  }

  statusOf(appName: string): Record<string, unknown> | undefined {
    const app = this.apps.get(appName);
    if (app === undefined) return undefined;
    const status = app.group.status();
    const progress = status.progress === undefined ? undefined : Object.fromEntries([...status.progress].map(([id, p]) => [id, { match: p.match, next: p.next, state: p.state, lag: status.hardState.commit - p.match, learner: p.isLearner }]));
    return {
      role: status.softState.role,
      leader: status.softState.leaderId || null,
      term: status.hardState.term,
      commitIndex: status.hardState.commit,
      appliedIndex: app.host.appliedIndex(),
      confState: status.confState,
      snapshotIndex: app.group.storage.snapshot().metadata.index,
      firstLogIndex: app.group.storage.firstIndex(),
      lastLogIndex: app.group.storage.lastIndex(),
      ...(progress === undefined ? {} : { progress }),
    };
  }

  async stop(): Promise<void> {
    if (this.tickTimer !== undefined) clearInterval(this.tickTimer);
    if (this.deployTimer !== undefined) clearInterval(this.deployTimer);
    for (const app of this.apps.values()) await app.host.close();
    await this.transport.stop();
  }
}
