// The network as a simulated node's group sees it (the production GroupTransport): Raft
// messages go to the simulated network one by one; a forwarded ReadIndex and a snapshot stream
// are request/response exchanges whose request and answer are each a leg through the network,
// lost or delayed like messages. A lost leg leaves the caller to its timeout; a link cut when
// the request leaves fails it at once (the connection is refused).

import { GroupUnavailableError } from '../../src/group/errors.js';
import type { GroupTransport } from '../../src/group/types.js';
import type { LogIndex, Message, NodeId } from '../../src/raft/index.js';
import type { ProcessClock, ProcessGate } from './clock.js';
import type { Network } from './network.js';

/** How long a snapshot stream may take before the sender gives up on it. */
const snapshotTimeoutMs = 400;
/** How soon a refused connection or a broken stream is reported. */
const refusedAfterMs = 2;
const brokenAfterMs = 20;

/** The outcome of a request, as it travels back. */
export type Answer<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: Error };

/** What the transport needs from the node at the far end. */
export interface RequestTarget {
  /** Serves the request as the target's process (dropped if it is down, held while paused) and
   *  hands the answer to `reply` from there. */
  serveReadIndex(deadlineMs: number, reply: (answer: Answer<LogIndex>) => void): void;
  serveSnapshot(message: Message, data: Uint8Array, reply: (answer: Answer<void>) => void): void;
}

export class SimTransport implements GroupTransport {
  constructor(
    private readonly nodeId: NodeId,
    private readonly network: Network,
    private readonly peer: (id: NodeId) => RequestTarget | undefined,
    private readonly clock: ProcessClock,
    private readonly gate: ProcessGate,
    /** Sees every message as it leaves (the invariant checker). */
    private readonly onSent: (message: Message) => void,
  ) {}

  send(messages: readonly Message[]): void {
    // A crashed process sends nothing, even from work it had already started.
    if (!this.gate.isAlive) return;
    for (const message of messages) {
      if (message.type === 'snap') throw new Error(`a snap message to ${message.to} was sent as a plain message`);
      this.onSent(message);
      this.network.send(message);
    }
  }

  readIndex(leaderId: NodeId, timeoutMs: number): Promise<LogIndex> {
    const deadlineMs = this.clock.nowMs() + timeoutMs;
    return this.call<LogIndex>(leaderId, timeoutMs, 'request', (target, reply) => target.serveReadIndex(deadlineMs, reply));
  }

  async sendSnapshot(message: Message, data: AsyncIterable<Uint8Array>): Promise<void> {
    const chunks: Uint8Array[] = [];
    for await (const chunk of data) chunks.push(chunk);
    const bytes = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0));
    let offset = 0;
    for (const chunk of chunks) {
      bytes.set(chunk, offset);
      offset += chunk.byteLength;
    }
    return this.call<void>(message.to, snapshotTimeoutMs, 'stream', (target, reply) => target.serveSnapshot(message, bytes, reply));
  }

  private call<T>(
    to: NodeId,
    timeoutMs: number,
    kind: 'request' | 'stream',
    request: (target: RequestTarget, reply: (answer: Answer<T>) => void) => void,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const settle = (answer: Answer<T>): void => {
        if (settled) return;
        settled = true;
        timer.cancel();
        if (answer.ok) resolve(answer.value);
        else reject(answer.error);
      };
      const timer = this.clock.setTimer(() => settle({ ok: false, error: new GroupUnavailableError(`no answer from ${to} within ${timeoutMs} ms`) }), timeoutMs);
      if (!this.gate.isAlive) return;
      const sent = this.network.leg(
        this.nodeId,
        to,
        () => {
          const target = this.peer(to);
          if (target === undefined) return; // down: the request is lost with it
          request(target, (answer) => {
            this.network.leg(to, this.nodeId, () => this.gate.run(() => settle(answer)));
          });
        },
        kind,
      );
      if (sent === 'refused') {
        this.clock.setTimer(() => settle({ ok: false, error: new GroupUnavailableError(`connection to ${to} refused`) }), refusedAfterMs);
      } else if (sent === 'broken') {
        this.clock.setTimer(() => settle({ ok: false, error: new GroupUnavailableError(`stream to ${to} broke`) }), brokenAfterMs);
      }
    });
  }
}
