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
