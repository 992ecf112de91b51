// Accounting for what one subscriber's transport holds in process memory because the kernel would
// not take it yet. This is the bound that keeps a slow or paused client from growing server
// memory: the hub disconnects a subscriber whose delivery does not fit, and paces replay on
// hasRoom()/onDrain().
//
// Bytes are read from the transport itself (socket writableLength / ws bufferedAmount), which
// Node lowers as soon as the kernel accepted a write. Counting until the write callback instead
// would count a burst of commits applied in one tick as "queued" even when the kernel took it all
// at once, and disconnect healthy subscribers. Messages are counted only while they sit in that
// userland queue.

export class SendBuffer {
  private queuedMessages = 0;
  private peakBytes = 0;
  private drainListeners: (() => void)[] = [];

  constructor(
    private readonly bytesMax: number,
    private readonly messagesMax: number,
    /** Bytes the transport holds that the kernel has not taken (plus any unflushed batch). */
    private readonly queuedBytes: () => number,
  ) {}

  /** Whether one more message of this size fits. A single message larger than bytesMax still fits
   *  into an empty queue, otherwise one big record would look like a slow client; memory stays
   *  bounded by bytesMax plus one message. */
  canAccept(messageBytes: number, messageCount = 1): boolean {
    if (this.queuedMessages + messageCount > this.messagesMax) return false;
    const queued = this.queuedBytes();
    return queued === 0 || queued + messageBytes <= this.bytesMax;
  }

  /** Runs `write` (which hands `messageCount` messages to the transport and calls `onWritten` once
   *  they left process memory) and accounts for them while they are queued. */
  track(messageCount: number, write: (onWritten: () => void) => void): void {
    let release: (() => void) | undefined;
    let writtenEarly = false;
    write(() => {
      if (release === undefined) writtenEarly = true;
      else release();
    });
    release = this.wrote(messageCount);
    if (writtenEarly) release();
  }

  private wrote(messageCount: number): () => void {
    const queued = this.queuedBytes();
    if (queued > this.peakBytes) this.peakBytes = queued;
    // The kernel took everything: nothing of this write stays in process memory.
    const counted = queued > 0 ? messageCount : 0;
    this.queuedMessages += counted;
    return () => {
      this.queuedMessages -= counted;
      if (this.queuedMessages < 0) throw new Error('SendBuffer: released more messages than queued');
      if (this.drainListeners.length > 0 && this.hasRoom()) this.notifyDrain();
    };
  }

  /** Below half of both limits: room for a replay chunk without risking a slow-disconnect. */
  hasRoom(): boolean {
    return this.queuedBytes() * 2 < this.bytesMax && this.queuedMessages * 2 < this.messagesMax;
  }

  /** The listener runs once, asynchronously, when hasRoom() holds. While it does not hold, a
   *  write is in flight, and its completion callback re-checks. */
  onDrain(listener: () => void): void {
    this.drainListeners.push(listener);
    if (this.hasRoom()) this.notifyDrain();
  }

  /** Drops pending drain listeners: a closed transport never resumes a replay. */
  clearDrainListeners(): void {
    this.drainListeners = [];
  }

  bufferedBytesPeak(): number {
    return this.peakBytes;
  }

  private notifyDrain(): void {
    const listeners = this.drainListeners;
    this.drainListeners = [];
    // Never re-enter the hub from inside a write callback or from onDrain() itself.
    setImmediate(() => {
      for (const listener of listeners) listener();
    });
  }
}

let lastText = '';
let lastUtf8: Buffer = Buffer.alloc(0);

/** The hub hands the same message string to every recipient; encoding it once (a one-entry memo)
 *  keeps fan-out to many subscribers from re-encoding per subscriber. */
export function utf8Of(text: string): Buffer {
  if (text !== lastText) {
    lastText = text;
    lastUtf8 = Buffer.from(text, 'utf8');
  }
  return lastUtf8;
}
