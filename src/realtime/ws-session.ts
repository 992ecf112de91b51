// One WebSocket subscriber: the hub's sink on top of a `ws` socket, with the send-buffer bound,
// ping-based liveness and a bounded close.

import type { WebSocket } from 'ws';
import type { MutableCounters } from './counters.js';
import type { CloseCause, SubscriberSink, Subscription } from './hub.js';
import type { HubLimits } from './limits.js';
import { SendBuffer, utf8Of } from './send-buffer.js';

/** RFC 6455 close codes we send. 1008 (policy violation) for a subscriber that cannot keep up,
 *  1013 (try again later) when the app's hub is full, 1001 (going away) on shutdown, 1011
 *  (internal error) when the replay could not be read. */
export const wsCloseSlow = 1008;
export const wsCloseTryAgainLater = 1013;
export const wsCloseGoingAway = 1001;
export const wsCloseInternalError = 1011;
/** A close frame carries at most 125 payload bytes, 2 of them the code. */
const closeReasonBytesMax = 123;

export class WsSession implements SubscriberSink {
  readonly ended: Promise<void>;
  private readonly buffer: SendBuffer;
  private subscription: Subscription | undefined;
  private answeredPing = true;
  private closing = false;
  private isEnded = false;
  private graceTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly socket: WebSocket,
    private readonly limits: HubLimits,
    private readonly counters: MutableCounters,
  ) {
    this.buffer = new SendBuffer(limits.bufferBytesMax, limits.bufferMessagesMax, () => socket.bufferedAmount);
    socket.on('pong', () => {
      this.answeredPing = true;
    });
    // Clients have nothing to say on a subscription; ws bounds their frames by maxPayload.
    socket.on('message', () => {});
    // An 'error' is always followed by 'close', where the session is cleaned up.
    socket.on('error', () => {});
    this.ended = new Promise((resolve) => {
      socket.once('close', () => {
        this.finish();
        resolve();
      });
    });
  }

  attach(subscription: Subscription): void {
    if (this.closing || this.isEnded) subscription.unsubscribe();
    else this.subscription = subscription;
  }

  deliver(message: string): boolean {
    if (this.closing) return true;
    const data = utf8Of(message);
    if (!this.buffer.canAccept(data.length)) return false;
    this.buffer.track(1, (onWritten) => this.socket.send(data, { binary: false }, onWritten));
    this.counters.messagesSent += 1;
    this.counters.bytesSent += data.length;
    this.counters.bufferedBytesPeak = Math.max(this.counters.bufferedBytesPeak, this.buffer.bufferedBytesPeak());
    return true;
  }

  hasRoom(): boolean {
    return this.buffer.hasRoom();
  }

  onDrain(listener: () => void): void {
    if (!this.closing) this.buffer.onDrain(listener);
  }

  close(reason: string, cause: CloseCause = 'shutdown'): void {
    const code = cause === 'slow' ? wsCloseSlow : cause === 'error' ? wsCloseInternalError : wsCloseGoingAway;
    this.closeWith(code, reason);
    if (cause === 'slow') this.counters.slowDisconnects += 1;
  }

  closeWith(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    this.subscription?.unsubscribe();
    this.buffer.clearDrainListeners();
    this.socket.close(code, truncateUtf8(reason, closeReasonBytesMax));
    // A paused peer never reads the close frame; its queued bytes must not outlive the grace.
    this.graceTimer = setTimeout(() => this.socket.terminate(), this.limits.closeGraceMs).unref();
  }

  /** Called every wsPingIntervalMs by the server: a peer that did not answer the last ping is dead. */
  heartbeat(): void {
    if (this.closing) return;
    if (!this.answeredPing) {
      this.counters.deadPeerTerminations += 1;
      this.closing = true;
      this.socket.terminate();
      return;
    }
    this.answeredPing = false;
    this.socket.ping();
  }

  private finish(): void {
    this.isEnded = true;
    this.closing = true;
    if (this.graceTimer !== undefined) clearTimeout(this.graceTimer);
    this.subscription?.unsubscribe();
    this.buffer.clearDrainListeners();
  }
}

export function truncateUtf8(text: string, bytesMax: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= bytesMax) return text;
  // Cutting may split a multi-byte character; drop the broken tail rather than send invalid UTF-8.
  return bytes.subarray(0, bytesMax).toString('utf8').replace(/\uFFFD+$/, '');
}
