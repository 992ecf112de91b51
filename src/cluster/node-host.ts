// A node process of a cluster: it hosts replicated groups (one per app, and any other group
// such as the control plane's) over one gRPC transport, ticks them, answers forwarded ReadIndex
// requests and snapshot streams for them through the group registry, and deploys an app's
// bundle from its directory while it leads that app's group (static bootstrap).
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { AppHost } from '../app/app-host.js';
import { readBundle } from '../app/bundle.js';
import { systemClock } from '../group/clock.js';
import type { FatalHandler } from '../group/errors.js';
import type { LeaderDuty } from '../group/leader-duties.js';
import { GroupRegistry, type HostedGroup } from '../group/registry.js';
import { defaultGroupTiming, type GroupTiming } from '../group/timing.js';
import type { GroupTransport } from '../group/types.js';
import type { GroupId } from '../model/ids.js';
import type { Logger } from '../observability/logger.js';
import { runChecks } from '../http/check-requests.js';
import type { ClusterMetrics } from '../observability/metrics.js';
import type { ConfChange, ConfState, Message, NodeId } from '../raft/index.js';
import type { GroupReport } from './control-protocol.js';
import type { TlsMaterial } from './tls.js';
import { Transport, TransportError } from './transport.js';
import type { RefusedPeerListener } from './transport-server.js';

export type ClusterTiming = GroupTiming;
export const defaultTiming: ClusterTiming = defaultGroupTiming;

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
  /** A group stopped on a broken invariant or a failed write (a node process exits). */
  readonly onFatal: FatalHandler;
  /** Simulated one-way latency to a peer (tests and benchmarks only). */
  readonly delayToPeerMs?: (peer: NodeId) => number;
  /** Mutual TLS for the gRPC server and every peer link (absent: plaintext). */
  readonly tls?: TlsMaterial;
  /** Told of every gRPC call refused for claiming a sender its certificate does not name. */
  readonly onRefusedPeer?: RefusedPeerListener;
}

/** What a node remembers about an app it hosts, so a restart needs no flags. */
export interface HostedAppRecord {
  readonly name: string;
  /** The app directory a static node deploys from; '' for an app the control plane placed here
   *  (its code arrives through its log). */
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
  readonly group: AppHost['group'];
}

const packr = new Packr({ useRecords: false, moreTypes: false });
/** How often a leader compares its app's bundle on disk with the active version. */
const deployCheckIntervalMs = 1_000;

export class NodeHost {
  readonly apps = new Map<string, HostedApp>();
  /** The app hosts by name, for the HTTP server (kept in step with `apps`). */
  readonly appHosts = new Map<string, AppHost>();
  readonly groups = new GroupRegistry();
  readonly transport: Transport;
  private readonly peers = new Map<NodeId, string>();
  /** The apps the node hosted when it last ran, read before anything rewrites the record: until
   *  each is hosted again (or left), the record keeps it. */
  private readonly hostedBefore: readonly HostedAppRecord[];
  /** Called when a replica's verdict on a staged version changes (the control agent reports it at once). */
  onVerdict: (() => void) | undefined;
  /** Apps left since the start (so the record no longer keeps them). */
  private readonly left = new Set<string>();
  private tickTimer: NodeJS.Timeout | undefined;

  constructor(private readonly options: NodeHostOptions) {
    mkdirSync(options.dataDir, { recursive: true });
    const saved = this.readRecord();
    if (saved !== undefined) {
      if (saved.nodeId !== options.nodeId) throw new Error(`data directory belongs to node ${saved.nodeId}, not ${options.nodeId}`);
      for (const [id, address] of Object.entries(saved.peers)) this.peers.set(id, address);
    }
    this.hostedBefore = saved?.apps ?? [];
    this.transport = new Transport({
      nodeId: options.nodeId,
      listenAddress: options.grpcAddress,
      peers: this.peers,
      faultInjection: options.faultInjection,
      logger: options.logger,
      ...(options.delayToPeerMs === undefined ? {} : { delayToPeerMs: options.delayToPeerMs }),
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      ...(options.onRefusedPeer === undefined ? {} : { onRefusedPeer: options.onRefusedPeer }),
      handlers: {
        onMessages: (groupId, messages) => this.groups.get(groupId)?.receive(messages),
        onReadIndex: (groupId, deadlineMs) => this.groups.require(groupId, options.nodeId).readIndexHere(deadlineMs),
        onSnapshot: (groupId, metadata, data, fromNode) => {
          const message = packr.unpack(metadata) as Message;
          // The transport vouches for the sender (its certificate, under mutual TLS); the snapshot's
          // raft message must not speak for another node.
          if (message.from !== fromNode) throw new TransportError('permissionDenied', `a snapshot from ${fromNode} claims to be from ${message.from}`);
          return this.groups.require(groupId, options.nodeId).receiveSnapshot(message, data);
        },
      },
    });
  }

  private wireUnreachable(): void {
    this.transport.onUnreachable = (groupId, peer) => this.groups.get(groupId)?.reportUnreachable(peer);
  }

  nodeId(): NodeId {
    return this.options.nodeId;
  }

  peerAddresses(): Record<NodeId, string> {
    return Object.fromEntries(this.peers);
  }

  /** The apps this node hosted when it last ran. */
  savedApps(): readonly HostedAppRecord[] {
    return this.hostedBefore;
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
      for (const group of this.groups.all()) group.tick();
    }, this.options.timing.tickMs);
  }

  /** Hosts a group that is not an app's (the control plane's, a test's); its messages arrive
   *  through the same transport. */
  hostGroup(group: HostedGroup): void {
    this.groups.add(group);
  }

  /** The network as the group `groupId` sees it. */
  transportFor(groupId: GroupId): GroupTransport {
    return {
      send: (messages) => this.transport.send(groupId, messages),
      readIndex: (leaderId, timeoutMs) => this.transport.readIndex(leaderId, groupId, timeoutMs),
      sendSnapshot: (message, data) => this.transport.sendSnapshot(message.to, groupId, packr.pack(message), data),
    };
  }

  /** Hosts an app's group: recovers it from disk, or bootstraps it with `initialVoters`. */
  async hostApp(record: HostedAppRecord, retainEntries: number): Promise<AppHost> {
    const existing = this.apps.get(record.name);
    if (existing !== undefined) return existing.host;
    const saved = this.readRecord()?.apps.find((app) => app.name === record.name);
    const effective = saved ?? record;
    const host = await AppHost.open({
      name: effective.name,
      dataDir: join(this.options.dataDir, 'apps', effective.name),
      // App code resolves its relative imports from its directory; code that arrived through
      // the log has none beside it.
      sourceDir: effective.appDir === '' ? join(this.options.dataDir, 'apps', effective.name) : effective.appDir,
      retainEntries,
      logger: this.options.logger,
      runChecks,
      onVerdict: () => this.onVerdict?.(),
      group: {
        nodeId: this.options.nodeId,
        initialVoters: effective.initialVoters,
        transport: this.transportFor(effective.name),
        shipsSnapshots: true,
        timing: this.options.timing,
        metrics: this.options.metrics.forGroup(effective.name),
        clock: systemClock,
        onMembershipChanged: (groupId, change, confState) => this.onMembershipChanged(groupId, change, confState),
        onFatal: this.options.onFatal,
      },
    });
    this.groups.add(host.group);
    if (effective.appDir !== '') host.group.duties.add(this.staticDeploy(effective, host));
    this.apps.set(effective.name, { record: effective, host, group: host.group });
    this.appHosts.set(effective.name, host);
    if (saved === undefined) this.writeRecord();
    return host;
  }

  /** Stops hosting an app whose group no longer has this node, and deletes its data. */
  async leaveApp(name: string): Promise<void> {
    const app = this.apps.get(name);
    if (app === undefined) return;
    this.apps.delete(name);
    this.left.add(name);
    this.appHosts.delete(name);
    this.groups.remove(name);
    await app.host.close();
    this.writeRecord();
    rmSync(join(this.options.dataDir, 'apps', name), { recursive: true, force: true });
    this.options.logger.info({ app: name }, 'left the app group');
  }

  /** How each hosted group stands, for the control plane. */
  groupReports(): GroupReport[] {
    return [...this.apps.values()].map(({ record, host, group }) => {
      const status = group.status();
      const runtime = host.activeRuntime();
      return {
        app: record.name,
        isLeader: group.isLeader(),
        leader: status.softState.leaderId,
        term: status.hardState.term,
        commit: status.hardState.commit,
        applied: host.appliedIndex(),
        voters: [...status.confState.voters].sort(),
        learners: [...status.confState.learners].sort(),
        match: status.progress === undefined ? undefined : Object.fromEntries([...status.progress].map(([id, progress]) => [id, progress.match])),
        activeVersion: host.appliedState().activeVersion,
        activeHash: runtime?.hash,
        epoch: host.appliedState().epoch,
        staged: host.stagedVerdicts(),
        served: host.servedByActive(),
        ...(host.validationChecks() === undefined ? {} : { checks: host.validationChecks() }),
      };
    });
  }

  /** While this node leads the app's group, it makes the active version match the app's
   *  directory (static bootstrap; the control plane will deploy instead). */
  private staticDeploy(record: HostedAppRecord, host: AppHost): LeaderDuty {
    let timer: NodeJS.Timeout | undefined;
    let deploying = false;
    const check = async (): Promise<void> => {
      if (deploying) return;
      deploying = true;
      try {
        const bundle = await readBundle(record.appDir);
        if (host.activeRuntime()?.hash === bundle.hash) return;
        const outcome = await host.deploy(bundle);
        if (outcome.status !== 'unchanged') this.options.logger.info({ app: record.name, outcome }, 'deploy');
      } catch (error) {
        this.options.logger.warn({ err: error, app: record.name }, 'deploy failed');
      } finally {
        deploying = false;
      }
    };
    return {
      name: `static deploy of ${record.name}`,
      start: () => {
        timer ??= setInterval(() => void check(), deployCheckIntervalMs);
        void check();
      },
      stop: () => {
        if (timer !== undefined) clearInterval(timer);
        timer = undefined;
      },
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
      apps: [...[...this.apps.values()].map((app) => app.record), ...this.hostedBefore.filter((app) => !this.apps.has(app.name) && !this.left.has(app.name))],
    };
    const path = join(this.options.dataDir, 'node.json');
    writeFileSync(`${path}.tmp`, JSON.stringify(record, null, 2));
    // rename is atomic: a crash leaves the old record or the new one, never half of one.
    renameSync(`${path}.tmp`, path);
  }

  /** Term, commit index and leadership of every group, for metrics. */
  groupGauges(): { name: string; term: number; commitIndex: number; isLeader: boolean }[] {
    return [...this.groups.all()].map((group) => {
      const status = group.status();
      return { name: group.groupId, term: status.hardState.term, commitIndex: status.hardState.commit, isLeader: group.isLeader() };
    });
  }

  statusOf(appName: string): Record<string, unknown> | undefined {
    const app = this.apps.get(appName);
    if (app === undefined) return undefined;
    const status = app.group.status();
    const bounds = app.group.logBounds();
    const progress = status.progress === undefined ? undefined : Object.fromEntries([...status.progress].map(([id, p]) => [id, { match: p.match, next: p.next, state: p.state, lag: status.hardState.commit - p.match, learner: p.isLearner }]));
    return {
      role: status.softState.role,
      leader: status.softState.leaderId || null,
      term: status.hardState.term,
      commitIndex: status.hardState.commit,
      appliedIndex: app.host.appliedIndex(),
      confState: status.confState,
      snapshotIndex: bounds.snapshotIndex,
      firstLogIndex: bounds.firstIndex,
      lastLogIndex: bounds.lastIndex,
      ...(progress === undefined ? {} : { progress }),
    };
  }

  async stop(): Promise<void> {
    if (this.tickTimer !== undefined) clearInterval(this.tickTimer);
    for (const app of this.apps.values()) await app.host.close();
    for (const group of this.groups.all()) group.stop();
    await this.transport.stop();
  }
}
