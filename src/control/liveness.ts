// The control-plane leader's view of node liveness: a node it has not heard from for
// `suspectAfterMs` becomes suspect (its replicas stay; nothing moves), and after `downAfterMs`
// down (its replicas are replaced elsewhere within each app's spec). Hearing from a node that
// is not up marks it up again. Each transition is one control entry; heartbeats themselves are
// not logged.
import type { LeaderDuty } from '../group/leader-duties.js';
import type { Logger } from '../observability/logger.js';
import type { ControlPlane } from './control-plane.js';

export interface LivenessTiming {
  /** How often nodes are asked to heartbeat. */
  readonly heartbeatIntervalMs: number;
  readonly suspectAfterMs: number;
  /** Like CockroachDB's time-until-store-dead: minutes by default. */
  readonly downAfterMs: number;
}

export const defaultLivenessTiming: LivenessTiming = {
  heartbeatIntervalMs: 1_000,
  suspectAfterMs: 5_000,
  downAfterMs: 5 * 60_000,
};

/** How often the leader looks for silent nodes. */
const checkIntervalMs = 500;

export class LivenessMonitor implements LeaderDuty {
  readonly name = 'node liveness';
  private timer: NodeJS.Timeout | undefined;
  private checking = false;

  constructor(
    private readonly control: ControlPlane,
    readonly timing: LivenessTiming,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.check(), checkIntervalMs);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const now = Date.now();
      for (const node of [...this.control.machine.state.nodes.values()]) {
        const silentMs = now - this.control.reports.lastHeardMs(node.id);
        const next = silentMs > this.timing.downAfterMs ? 'down' : silentMs > this.timing.suspectAfterMs ? 'suspect' : undefined;
        if (next === undefined || next === node.liveness || (next === 'suspect' && node.liveness === 'down')) continue;
        this.logger.warn({ node: node.id, silentMs, liveness: next }, 'node liveness changed');
        await this.control.propose({ op: 'node.liveness', id: node.id, liveness: next }, 'control:liveness');
      }
    } catch (error) {
      this.logger.warn({ err: error }, 'liveness check failed');
    } finally {
      this.checking = false;
    }
  }
}
