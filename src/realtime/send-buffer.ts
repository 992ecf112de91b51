// Accounting for what one subscriber's transport has accepted but the kernel has not yet taken.
// This is the bound that keeps a slow or paused client from growing server memory: the hub
// disconnects a subscriber whose reservation fails, and paces replay on hasRoom()/onDrain().

export class SendBuffer {
  private bytes = 0;
  private messages = 0;
  private peakBytes = 0;
  private drainListeners: (() => void)[] = [];

  constructor(
    private readonly bytesMax: number,
    private readonly messagesMax: number,
  ) {}

  /** Accounts one message about to be written; false when it would exceed a limit. A single
   *  message larger than bytesMax is still accepted into an empty buffer, otherwise one big record
   *  would look like a slow client; memory stays bounded by bytesMax plus one message. */
  tryReserve(messageBytes: number): boolean {
    if (this.messages + 1 > this.messagesMax) return false;
    if (this.messages > 0 && this.bytes + messageBytes > this.bytesMax) return false;
    this.bytes += messageBytes;
    this.messages += 1;
    if (this.bytes > this.peakBytes) this.peakBytes = this.bytes;
    return true;
  }

  /** Called from the write callback once the kernel took the data (or the write failed). */
  release(messageBytes: number, messageCount: number): void {
    this.bytes -= messageBytes;
    this.messages -= messageCount;
    if (this.bytes < 0 || this.messages < 0) throw new Error('SendBuffer: released more than reserved');
    if (this.drainListeners.length > 0 && this.hasRoom()) this.notifyDrain();
  }

  /** Below half of both limits: room for a replay chunk without risking a slow-disconnect. */
  hasRoom(): boolean {
    return this.bytes * 2 < this.bytesMax && this.messages * 2 < this.messagesMax;
  }

  onDrain(listener: () => void): void {
    this.drainListeners.push(listener);
    if (this.hasRoom()) this.notifyDrain();
  }

  /** Drops pending drain listeners: a closed transport never resumes a replay. */
  clearDrainListeners(): void {
    this.drainListeners = [];
  }

  bufferedBytes(): number {
    return this.bytes;
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
 *  keeps fan-out to many WebSocket subscribers from re-encoding per subscriber. */
export function utf8Of(text: string): Buffer {
  if (text !== lastText) {
    lastText = text;
    lastUtf8 = Buffer.from(text, 'utf8');
  }
  return lastUtf8;
}
