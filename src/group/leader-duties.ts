// Work that only the leader of a group should do (sweeping expired records, deploying a static
// app directory, the control plane's reconciler): registered once, started when this node
// becomes leader and stopped when it stops being leader or the group stops.
import type { Logger } from '../observability/logger.js';

export interface LeaderDuty {
  /** For logs. */
  readonly name: string;
  start(): void;
  stop(): void;
}

export class LeaderDuties {
  private readonly duties: LeaderDuty[] = [];
  private leading = false;

  constructor(private readonly logger: Logger) {}

  add(duty: LeaderDuty): void {
    this.duties.push(duty);
    if (this.leading) this.startOne(duty);
  }

  isLeading(): boolean {
    return this.leading;
  }

  leadershipChanged(leading: boolean): void {
    if (leading === this.leading) return;
    this.leading = leading;
    for (const duty of this.duties) {
      if (leading) this.startOne(duty);
      else this.stopOne(duty);
    }
  }

  private startOne(duty: LeaderDuty): void {
    try {
      duty.start();
    } catch (error) {
      this.logger.error({ err: error, duty: duty.name }, 'leader duty failed to start');
    }
  }

  private stopOne(duty: LeaderDuty): void {
    try {
      duty.stop();
    } catch (error) {
      this.logger.error({ err: error, duty: duty.name }, 'leader duty failed to stop');
    }
  }
}
