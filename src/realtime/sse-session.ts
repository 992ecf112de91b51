// One Server-Sent Events subscriber. Events handed over between two flush() calls are written as
// one chunk, and only the last event of each index carries `id: <index>`: a client that loses the
// connection mid-index resumes (Last-Event-ID) after the previous complete index, so one index's
// events are never split across a resume.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { MutableCounters } from './counters.js';
import { slowReason, type CloseCause, type SubscriberSink, type Subscription } from './hub.js';
import type { HubLimits } from './limits.js';
import { encodeError } from './messages.js';
import { SendBuffer, utf8Of } from './send-buffer.js';

/** `id: <index>\ndata: ` and the blank line around each message, counted against the buffer. */
const eventFramingBytes = 32;
const heartbeatText = ': heartbeat\n\n';

interface PendingEvent {
  readonly message: string;
  readonly index: number;
}

export class SseSession implements SubscriberSink {
  readonly ended: Promise<void>;
  private readonly buffer: SendBuffer;
  private subscription: Subscription | undefined;
  private batch: PendingEvent[] = [];
  private batchBytes = 0;
  private closing = false;
  private isEnded = false;
  private graceTimer: NodeJS.Timeout | undefined;

  constructor(
    req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly limits: HubLimits,
    private readonly counters: MutableCounters,
  ) {
    this.buffer = new SendBuffer(limits.bufferBytesMax, limits.bufferMessagesMax, () => res.writableLength + this.batchBytes);
    // A stream lives as long as the subscriber wants it; Node's idle socket timeout must not end it.
    req.socket.setTimeout(0);
    req.socket.setNoDelay(true);
    this.ended = new Promise((resolve) => {
      res.once('close', () => {
        this.finish();
        resolve();
      });
    });
  }

  start(extraHeaders: Readonly<Record<string, string>> = {}): void {
    this.res.writeHead(200, {
      ...extraHeaders,
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      // Reverse proxies (nginx) would otherwise buffer the stream.
      'X-Accel-Buffering': 'no',
    });
    this.res.flushHeaders();
  }

  attach(subscription: Subscription): void {
    if (this.closing || this.isEnded) subscription.unsubscribe();
    else this.subscription = subscription;
  }

  deliver(message: string, index: number): boolean {
    if (this.closing) return true;
    const bytes = utf8Of(message).length + eventFramingBytes;
    if (!this.buffer.canAccept(bytes, this.batch.length + 1)) return false;
    this.batch.push({ message, index });
    this.batchBytes += bytes;
    return true;
  }

  flush(): void {
    if (this.closing || this.batch.length === 0) return;
    const batch = this.batch;
    const bytes = this.batchBytes;
    this.batch = [];
    this.batchBytes = 0;
    let text = '';
    for (let position = 0; position < batch.length; position += 1) {
      const event = batch[position]!;
      const endsIndex = position === batch.length - 1 || batch[position + 1]!.index !== event.index;
      text += endsIndex ? `id: ${event.index}\ndata: ${event.message}\n\n` : `data: ${event.message}\n\n`;
    }
    this.buffer.track(batch.length, (onWritten) => this.res.write(text, onWritten));
    this.counters.messagesSent += batch.length;
    this.counters.bytesSent += bytes;
    this.counters.bufferedBytesPeak = Math.max(this.counters.bufferedBytesPeak, this.buffer.bufferedBytesPeak());
  }

  hasRoom(): boolean {
    return this.buffer.hasRoom();
  }

  onDrain(listener: () => void): void {
    if (!this.closing) this.buffer.onDrain(listener);
  }

  /** Called every sseHeartbeatMs by the server; keeps proxies from timing the stream out. */
  heartbeat(): void {
    if (this.closing) return;
    const bytes = heartbeatText.length;
    // A client that cannot even take heartbeats is as slow as one that cannot take events.
    if (!this.buffer.canAccept(bytes)) {
      this.close(slowReason, 'slow');
      return;
    }
    this.buffer.track(1, (onWritten) => this.res.write(heartbeatText, onWritten));
  }

  close(reason: string, cause: CloseCause = 'shutdown'): void {
    if (this.closing) return;
    this.closing = true;
    if (cause === 'slow') this.counters.slowDisconnects += 1;
    // Events of an index not yet flushed are dropped whole; the client resumes before them.
    this.batch = [];
    this.subscription?.unsubscribe();
    this.buffer.clearDrainListeners();
    if (!this.res.writableEnded && !this.res.destroyed) {
      this.res.end(`event: error\ndata: ${encodeError(reason)}\n\n`);
    }
    // A paused peer never drains the buffer; it must not keep it alive past the grace.
    this.graceTimer = setTimeout(() => this.res.destroy(), this.limits.closeGraceMs).unref();
  }

  private finish(): void {
    this.isEnded = true;
    this.closing = true;
    this.batch = [];
    if (this.graceTimer !== undefined) clearTimeout(this.graceTimer);
    this.subscription?.unsubscribe();
    this.buffer.clearDrainListeners();
  }
}
