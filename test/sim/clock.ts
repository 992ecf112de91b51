// Time as one simulated process sees it: the production Clock on the simulator's scheduler.
// setTimer and defer become scheduled events at virtual times, random() draws from the seed.
// Every event meant for the process passes its gate: a paused process (a GC pause, a stopped
// VM) gets its timers, deferred work and network input once it resumes; a crashed one never.

import type { Clock, Timer } from '../../src/group/clock.js';
import type { Prng } from './prng.js';
import type { Scheduler } from './scheduler.js';

/** Messages and requests a paused process's sockets buffer; beyond it they are lost. */
const pausedInboxCountMax = 2_000;

export class ProcessGate {
  private alive = true;
  private paused = false;
  private held: (() => void)[] = [];
  private heldInbound = 0;

  constructor(private readonly scheduler: Scheduler) {}

  get isAlive(): boolean {
    return this.alive;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Runs `callback` as the process: now, after the pause, or never (crashed). */
  run(callback: () => void): void {
    if (!this.alive) return;
    if (this.paused) this.held.push(callback);
    else callback();
  }

  /** Network input: like run(), but a paused process's buffer is bounded. */
  receive(callback: () => void): void {
    if (this.alive && this.paused) {
      if (this.heldInbound >= pausedInboxCountMax) return;
      this.heldInbound++;
    }
    this.run(callback);
  }

  pause(): void {
    if (this.alive) this.paused = true;
  }

  /** What waited runs in order, each as its own event (as many turns of the event loop). */
  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const held = this.held;
    this.held = [];
    this.heldInbound = 0;
    for (const callback of held) this.scheduler.schedule(0, () => this.run(callback));
  }

  kill(): void {
    this.alive = false;
    this.paused = false;
    this.held = [];
  }
}

export class ProcessClock implements Clock {
  constructor(
    private readonly scheduler: Scheduler,
    private readonly prng: Prng,
    private readonly gate: ProcessGate,
  ) {}

  nowMs(): number {
    return this.scheduler.now;
  }

  setTimer(callback: () => void, delayMs: number): Timer {
    let cancelled = false;
    this.scheduler.schedule(delayMs, () => {
      if (!cancelled) this.gate.run(() => {
        if (!cancelled) callback();
      });
    });
    return { cancel: () => (cancelled = true) };
  }

  defer(callback: () => void): void {
    this.scheduler.schedule(0, () => this.gate.run(callback));
  }

  random(): number {
    return this.prng.float();
  }
}
