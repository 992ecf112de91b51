// Prometheus metrics of a node (prom-client). One registry per server, so that tests running
// several servers in one process do not share counters.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface AppGaugeSource {
  readonly name: string;
  appliedIndex(): number;
  subscriberCount(): number;
  dataFileBytes(): number;
}

export class NodeMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'app' | 'table' | 'method' | 'status'>;
  readonly requestSeconds: Histogram<'app' | 'table' | 'method' | 'status'>;
  readonly proposeSeconds: Histogram<'app' | 'outcome'>;
  readonly writeRetries: Counter<'app' | 'reason'>;
  readonly appErrors: Counter<'app' | 'version' | 'resource' | 'method'>;

  constructor(apps: () => Iterable<AppGaugeSource>) {
    collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({
      name: 'lockstep_http_requests_total',
      help: 'HTTP requests answered, by app, table (or endpoint), method and status.',
      labelNames: ['app', 'table', 'method', 'status'],
      registers: [this.registry],
    });
    this.requestSeconds = new Histogram({
      name: 'lockstep_http_request_duration_seconds',
      help: 'Time from request start to response end.',
      labelNames: ['app', 'table', 'method', 'status'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [this.registry],
    });
    this.proposeSeconds = new Histogram({
      name: 'lockstep_apply_duration_seconds',
      help: 'Time from proposing an entry to its durable commit and apply on this node.',
      labelNames: ['app', 'outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [this.registry],
    });
    this.writeRetries = new Counter({
      name: 'lockstep_write_retries_total',
      help: 'Write sets rerun because a read changed (conflict) or the app version switched (version).',
      labelNames: ['app', 'reason'],
      registers: [this.registry],
    });
    this.appErrors = new Counter({
      name: 'lockstep_app_errors_total',
      help: 'Exceptions thrown by app code (answered 500), by app, version, resource and method.',
      labelNames: ['app', 'version', 'resource', 'method'],
      registers: [this.registry],
    });
    const perApp = (name: string, help: string, read: (app: AppGaugeSource) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['app'],
        registers: [this.registry],
        collect() {
          for (const app of apps()) this.set({ app: app.name }, read(app));
        },
      });
    };
    perApp('lockstep_log_applied_index', 'Last log index applied on this node.', (app) => app.appliedIndex());
    perApp('lockstep_subscriptions', 'Open WebSocket and SSE subscriptions.', (app) => app.subscriberCount());
    perApp('lockstep_lmdb_data_file_bytes', 'Size of the LMDB data file.', (app) => app.dataFileBytes());
  }

  /** Exposes the real-time layer's own counters (kept there, read at scrape time). */
  registerRealtime(read: () => Readonly<Record<'messagesSent' | 'bytesSent' | 'slowDisconnects' | 'subscriptionsTotal', number>>): void {
    const names = {
      messagesSent: ['lockstep_realtime_messages_sent_total', 'Messages sent to WebSocket and SSE subscribers.'],
      bytesSent: ['lockstep_realtime_bytes_sent_total', 'Bytes sent to WebSocket and SSE subscribers.'],
      slowDisconnects: ['lockstep_realtime_slow_disconnects_total', 'Subscribers disconnected because they did not keep up.'],
      subscriptionsTotal: ['lockstep_realtime_subscriptions_total', 'Subscriptions opened since start.'],
    } as const;
    for (const [key, [name, help]] of Object.entries(names) as [keyof typeof names, readonly [string, string]][]) {
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(read()[key]);
        },
      });
    }
  }
}

/** What a Raft group reports as it runs (counters and latencies measured where they happen). */
export interface RaftGroupMetrics {
  leaderChanged(): void;
  proposed(outcome: 'committed' | 'dropped' | 'timeout'): void;
  /** One Ready's LMDB transaction (append, hard state, apply), fsync included. */
  readyPersisted(seconds: number, entries: number): void;
  /** From a leader's propose() to the entry applied on the leader. */
  committed(seconds: number): void;
  snapshot(kind: 'taken' | 'installed' | 'sent' | 'sendFailed'): void;
}

export interface ClusterGaugeSource {
  groups(): Iterable<{ name: string; term: number; commitIndex: number; isLeader: boolean }>;
  transport(): { bytesSent: number; bytesReceived: number; messagesSent: number; messagesDropped: number; reconnects: number };
}

export class ClusterMetrics {
  private readonly leaderChanges: Counter<'app'>;
  private readonly proposals: Counter<'app' | 'outcome'>;
  private readonly readySeconds: Histogram<'app'>;
  private readonly readyEntries: Histogram<'app'>;
  private readonly commitSeconds: Histogram<'app'>;
  private readonly snapshots: Counter<'app' | 'kind'>;

  constructor(registry: Registry, source: ClusterGaugeSource) {
    const registers = [registry];
    this.leaderChanges = new Counter({ name: 'lockstep_raft_leader_changes_total', help: 'Times this node saw the leader of a group change.', labelNames: ['app'], registers });
    this.proposals = new Counter({ name: 'lockstep_raft_proposals_total', help: 'Proposals made on this node as leader, by outcome.', labelNames: ['app', 'outcome'], registers });
    this.readySeconds = new Histogram({
      name: 'lockstep_raft_ready_persist_seconds',
      help: 'One Ready: append, hard state and apply in one LMDB transaction, fsync included.',
      labelNames: ['app'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    });
    this.readyEntries = new Histogram({ name: 'lockstep_raft_ready_entries', help: 'Entries appended per Ready (batching).', labelNames: ['app'], buckets: [0, 1, 2, 4, 8, 16, 32, 64, 128, 256], registers });
    this.commitSeconds = new Histogram({
      name: 'lockstep_raft_commit_seconds',
      help: 'From propose() on the leader to the entry applied there.',
      labelNames: ['app'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.snapshots = new Counter({ name: 'lockstep_raft_snapshots_total', help: 'Snapshots taken, installed, sent and failed to send.', labelNames: ['app', 'kind'], registers });
    const gauge = (name: string, help: string, read: (group: { term: number; commitIndex: number; isLeader: boolean }) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['app'],
        registers,
        collect() {
          for (const group of source.groups()) this.set({ app: group.name }, read(group));
        },
      });
    };
    gauge('lockstep_raft_term', 'Current term of the group on this node.', (group) => group.term);
    gauge('lockstep_raft_commit_index', 'Commit index of the group on this node.', (group) => group.commitIndex);
    gauge('lockstep_raft_is_leader', '1 if this node leads the group.', (group) => (group.isLeader ? 1 : 0));
    const transportGauge = (name: string, help: string, key: keyof ReturnType<ClusterGaugeSource['transport']>): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(source.transport()[key]);
        },
      });
    };
    transportGauge('lockstep_grpc_bytes_sent_total', 'Bytes sent to peers over gRPC.', 'bytesSent');
    transportGauge('lockstep_grpc_bytes_received_total', 'Bytes received from peers over gRPC.', 'bytesReceived');
    transportGauge('lockstep_grpc_messages_sent_total', 'Raft messages sent to peers.', 'messagesSent');
    transportGauge('lockstep_grpc_messages_dropped_total', 'Raft messages dropped (peer down, queue full, partition).', 'messagesDropped');
    transportGauge('lockstep_grpc_reconnects_total', 'Peer stream reconnects.', 'reconnects');
  }

  forGroup(app: string): RaftGroupMetrics {
    return {
      leaderChanged: () => this.leaderChanges.inc({ app }),
      proposed: (outcome) => this.proposals.inc({ app, outcome }),
      readyPersisted: (seconds, entries) => {
        this.readySeconds.observe({ app }, seconds);
        this.readyEntries.observe({ app }, entries);
      },
      committed: (seconds) => this.commitSeconds.observe({ app }, seconds),
      snapshot: (kind) => this.snapshots.inc({ app, kind }),
    };
  }
}
