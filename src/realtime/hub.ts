// One hub per app: fans committed change events out to that app's subscribers, and brings a new
// subscriber from its resume point (`since`) to the live stream without gaps or duplicates.
//
// Catch-up never buffers live events per subscriber: while a subscriber is replaying, publish()
// skips it, and the replay re-reads the source until it has covered the applied index; only then
// does the subscriber go live. Everything here runs synchronously on one thread, and the host
// calls publish() synchronously after appliedIndex() advanced, so "read covered up to applied" and
// "go live" cannot be separated by a publish. A slow replaying subscriber therefore costs the
// source's read result, never an unbounded per-subscriber queue.

import assert from 'node:assert/strict';
import type { ChangeEvent } from '../model/change-event.js';
import { Problem } from '../model/problem.js';
import { assertValidFilter } from './filter.js';
import { resolveHubLimits, type HubLimits } from './limits.js';
import { encodeChangeEvent, encodeReset } from './messages.js';
import { SubscriberIndex } from './subscriber-index.js';
import type { ChangeSource, SubscriptionFilter } from './types.js';

export type { HubLimits } from './limits.js';

/** Short enough for a WebSocket close frame (123 bytes of reason at most). */
export const slowReason = 'subscriber too slow: send buffer limit exceeded';

/** Why a sink is being closed; transports map it to a WS close code or SSE error text.
 *  'error': reading the replay from the source failed. */
export type CloseCause = 'slow' | 'shutdown' | 'error';

export interface SubscriberSink {
  /** false = buffer limit exceeded; the hub then drops the subscription and calls close(…, 'slow'). */
  deliver(message: string, index: number): boolean;
  close(reason: string, cause?: CloseCause): void;
  /** Called after the hub handed over every event of one or more complete indexes (end of a
   *  publish, end of a replay chunk). Transports write their batch here, and SSE marks the resume
   *  point, so one index's events are never split across a resume. */
  flush?(): void;
  /** Replay pacing: false while the transport buffer is above its low-water mark. */
  hasRoom?(): boolean;
  /** Replay pacing: call `listener` once, asynchronously, when the buffer falls below low water. */
  onDrain?(listener: () => void): void;
}

export interface Subscription {
  unsubscribe(): void;
}

export interface HubCounters {
  readonly subscribers: number;
  readonly subscriptionsTotal: number;
  readonly messagesDelivered: number;
  readonly slowDisconnects: number;
  readonly resetsSent: number;
  /** Times a replay paused for a subscriber's buffer to drain (a slow or far-behind resumer). */
  readonly replayWaits: number;
}

interface Backlog {
  readonly events: readonly ChangeEvent[];
  /** The applied index at the time of the read: the backlog covers (coveredThrough, readThrough]. */
  readonly readThrough: number;
  position: number;
}

class Subscriber {
  state: 'replaying' | 'live' | 'closed' = 'replaying';
  /** Every event with index <= coveredThrough has been handed to the sink (or did not match). */
  coveredThrough: number;
  backlog: Backlog | undefined = undefined;

  constructor(
    readonly filter: SubscriptionFilter,
    readonly sink: SubscriberSink,
    since: number,
  ) {
    this.coveredThrough = since;
  }
}

export class ChangeHub {
  private readonly limits: HubLimits;
  private readonly subscribers = new SubscriberIndex<Subscriber>();
  private lastPublishedIndex = 0;
  private subscriptionsTotal = 0;
  private messagesDelivered = 0;
  private slowDisconnects = 0;
  private resetsSent = 0;
  private replayWaits = 0;

  constructor(
    private readonly source: ChangeSource,
    limits?: Partial<HubLimits>,
  ) {
    this.limits = resolveHubLimits(limits);
  }

  /** The index this node has applied: a resume point beyond it names a future this node has not
   *  reached (the subscription is refused, see server.ts). */
  appliedIndex(): number {
    return this.source.appliedIndex();
  }

  /** Called by the host after each commit, in log order, synchronously after appliedIndex() advanced. */
  publish(events: readonly ChangeEvent[]): void {
    const touched = new Set<Subscriber>();
    for (const event of events) {
      // A decreasing index would reorder the stream for every subscriber: a host bug, not input.
      assert(event.index >= this.lastPublishedIndex, `publish: index ${event.index} after ${this.lastPublishedIndex}`);
      this.lastPublishedIndex = event.index;
      let message: string | undefined;
      this.subscribers.forEachRecipient(event, (subscriber) => {
        // Replaying subscribers will read this event from the source; live ones skip what their
        // replay already covered.
        if (subscriber.state !== 'live' || event.index <= subscriber.coveredThrough) return;
        message ??= encodeChangeEvent(event);
        if (!subscriber.sink.deliver(message, event.index)) {
          touched.delete(subscriber);
          this.dropSlow(subscriber);
          return;
        }
        this.messagesDelivered += 1;
        touched.add(subscriber);
      });
    }
    for (const subscriber of touched) subscriber.sink.flush?.();
  }

  /** `since` undefined = live only, from the current applied index. Throws Problem 'unavailable' when the
   *  hub is full (check isFull() before upgrading a connection). */
  subscribe(filter: SubscriptionFilter, since: number | undefined, sink: SubscriberSink): Subscription {
    assertValidFilter(filter);
    if (since !== undefined) assert(Number.isSafeInteger(since) && since >= 0, `subscribe: bad since ${since}`);
    if (this.isFull()) {
      throw new Problem('unavailable', { detail: `at most ${this.limits.subscribersMax} subscribers per app`, headers: { 'Retry-After': '5' } });
    }
    const subscriber = new Subscriber(filter, sink, since ?? this.source.appliedIndex());
    // Registered before anything is read, so no publish can fall between replay and live.
    this.subscribers.add(filter, subscriber);
    this.subscriptionsTotal += 1;
    if (since === undefined) {
      subscriber.state = 'live';
    } else {
      try {
        this.pumpReplay(subscriber);
      } catch (error) {
        // The caller answers the request with the error; nothing of it may stay registered.
        this.remove(subscriber);
        throw error;
      }
    }
    return { unsubscribe: () => this.remove(subscriber) };
  }

  isFull(): boolean {
    return this.subscribers.size() >= this.limits.subscribersMax;
  }

  subscriberCount(): number {
    return this.subscribers.size();
  }

  counters(): HubCounters {
    return {
      subscribers: this.subscribers.size(),
      subscriptionsTotal: this.subscriptionsTotal,
      messagesDelivered: this.messagesDelivered,
      slowDisconnects: this.slowDisconnects,
      resetsSent: this.resetsSent,
      replayWaits: this.replayWaits,
    };
  }

  /**
   * The node's state jumped ahead without applying the entries in between (a snapshot from the
   * leader replaced it), so their events were never published here. Every live subscriber
   * replays from where it stands, out of the change window the snapshot brought; one whose
   * position the window no longer reaches gets a reset, as after a too-old resume point.
   */
  resync(): void {
    for (const subscriber of this.subscribers.all()) {
      if (subscriber.state !== 'live') continue;
      subscriber.state = 'replaying';
      subscriber.backlog = undefined;
      this.resumeReplay(subscriber);
    }
  }

  closeAll(reason: string): void {
    for (const subscriber of this.subscribers.all()) {
      this.remove(subscriber);
      subscriber.sink.close(reason, 'shutdown');
    }
  }

  /** Hands a replaying subscriber its backlog chunk by chunk while its buffer has room, re-reading
   *  the source until nothing is left; then switches it to live. */
  private pumpReplay(subscriber: Subscriber): void {
    const { sink } = subscriber;
    while (subscriber.state === 'replaying') {
      if (subscriber.backlog === undefined) {
        const readThrough = this.source.appliedIndex();
        const result = this.source.readSince(subscriber.coveredThrough, subscriber.filter);
        if ('reset' in result) {
          this.sendReset(subscriber, result.oldestIndex, readThrough);
          return;
        }
        if (result.events.length === 0) {
          subscriber.coveredThrough = Math.max(subscriber.coveredThrough, readThrough);
          subscriber.state = 'live';
          return;
        }
        subscriber.backlog = { events: result.events, readThrough, position: 0 };
      }
      if (sink.hasRoom !== undefined && !sink.hasRoom()) {
        if (sink.onDrain === undefined) throw new Error('SubscriberSink: hasRoom without onDrain');
        this.replayWaits += 1;
        sink.onDrain(() => this.resumeReplay(subscriber));
        return;
      }
      if (!this.deliverBacklogChunk(subscriber, subscriber.backlog)) return;
    }
  }

  /** A replay resumed from a drain callback has no caller to throw to: a failing source read ends
   *  that one subscription instead of the process. */
  private resumeReplay(subscriber: Subscriber): void {
    try {
      this.pumpReplay(subscriber);
    } catch (error) {
      if (error instanceof assert.AssertionError) throw error;
      this.remove(subscriber);
      subscriber.sink.close(`replay failed: ${error instanceof Error ? error.message : String(error)}`, 'error');
    }
  }

  /** Delivers up to replayChunkEventsMax events, extended to the end of an index so a chunk never
   *  splits one. Returns false when the subscriber was dropped. */
  private deliverBacklogChunk(subscriber: Subscriber, backlog: Backlog): boolean {
    const { events } = backlog;
    const chunkEnd = Math.min(events.length, backlog.position + this.limits.replayChunkEventsMax);
    let previousIndex = subscriber.coveredThrough;
    while (backlog.position < events.length) {
      const event = events[backlog.position]!;
      if (backlog.position >= chunkEnd && event.index !== previousIndex) break;
      // The source contract: strictly after the resume point, in log order, not past applied.
      assert(event.index > subscriber.coveredThrough && event.index >= previousIndex && event.index <= backlog.readThrough,
        `readSince returned index ${event.index} outside (${subscriber.coveredThrough}, ${backlog.readThrough}]`);
      if (!subscriber.sink.deliver(encodeChangeEvent(event), event.index)) {
        this.dropSlow(subscriber);
        return false;
      }
      this.messagesDelivered += 1;
      previousIndex = event.index;
      backlog.position += 1;
    }
    if (backlog.position === events.length) {
      subscriber.coveredThrough = backlog.readThrough;
      subscriber.backlog = undefined;
    } else {
      subscriber.coveredThrough = previousIndex;
    }
    subscriber.sink.flush?.();
    return true;
  }

  /** The window no longer reaches the resume point: say so, then continue live from `current`. */
  private sendReset(subscriber: Subscriber, oldestIndex: number, current: number): void {
    this.resetsSent += 1;
    subscriber.coveredThrough = current;
    subscriber.backlog = undefined;
    if (!subscriber.sink.deliver(encodeReset(oldestIndex, current), current)) {
      this.dropSlow(subscriber);
      return;
    }
    subscriber.state = 'live';
    subscriber.sink.flush?.();
  }

  private dropSlow(subscriber: Subscriber): void {
    this.remove(subscriber);
    this.slowDisconnects += 1;
    subscriber.sink.close(slowReason, 'slow');
  }

  private remove(subscriber: Subscriber): void {
    if (subscriber.state === 'closed') return;
    subscriber.state = 'closed';
    subscriber.backlog = undefined;
    this.subscribers.remove(subscriber.filter, subscriber);
  }
}
