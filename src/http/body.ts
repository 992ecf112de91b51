// Reading a request body with a hard size limit: a client that announces or sends more than the
// limit gets 413 before the excess is buffered.
import type { IncomingMessage } from 'node:http';
import { Problem } from '../model/problem.js';

/** A body over the limit but under this is read and discarded after the 413, so the client can
 *  finish sending and read the answer on a connection that stays open (closing while it still
 *  sends makes it fail with EPIPE before it sees the 413). Larger ones close the connection. */
export const discardBytesMax = 16 * 1024 * 1024;

export function readBody(req: IncomingMessage, bytesMax: number): Promise<Buffer> {
  const announced = req.headers['content-length'];
  if (announced !== undefined && Number(announced) > bytesMax) {
    return Promise.reject(tooLarge(bytesMax, Number(announced) > discardBytesMax));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > bytesMax) {
        req.removeAllListeners('data');
        // Keep reading (and dropping) what follows, up to the bound, then cut the connection.
        let discarded = 0;
        req.on('data', (rest: Buffer) => {
          discarded += rest.length;
          if (discarded > discardBytesMax) req.destroy();
        });
        reject(tooLarge(bytesMax, false));
        return;
      }
      chunks.push(chunk);
    });
    let ended = false;
    req.on('end', () => {
      ended = true;
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks));
    });
    req.on('error', reject);
    // A client that closes the connection mid-body ends neither with 'end' nor always with 'error'.
    req.on('close', () => {
      if (!ended) reject(new Error('the client closed the request before sending its whole body'));
    });
  });
}

function tooLarge(bytesMax: number, closeConnection: boolean): Problem {
  return new Problem('too-large', { detail: `the request body exceeds the limit of ${bytesMax} bytes`, headers: closeConnection ? { Connection: 'close' } : {} });
}
