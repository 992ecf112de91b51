// A signed checkpoint of the audit chain's head, sent where the operator keeps it, outside the
// cluster: a file (written whole, then renamed into place, so a reader never sees half of one)
// or an http(s) URL (POSTed as JSON; any 2xx is taken). `clusterctl audit checkpoint --out` and
// the leader's `--audit-export` after each seal both use it.
import { renameSync, writeFileSync } from 'node:fs';
import { request } from 'undici';

/** A checkpoint POST must be answered within this long. */
const exportTimeoutMs = 10_000;

export function isUrlTarget(target: string): boolean {
  return /^https?:\/\//i.test(target);
}

/** Sends `checkpoint` to `target`; throws naming the target and what went wrong. */
export async function exportCheckpoint(target: string, checkpoint: unknown): Promise<void> {
  const text = `${JSON.stringify(checkpoint, null, 2)}\n`;
  if (!isUrlTarget(target)) {
    const temporary = `${target}.${process.pid}.tmp`;
    writeFileSync(temporary, text, { mode: 0o644 });
    renameSync(temporary, target);
    return;
  }
  const answer = await request(target, { method: 'POST', headers: { 'content-type': 'application/json' }, body: text, headersTimeout: exportTimeoutMs, bodyTimeout: exportTimeoutMs });
  await answer.body.dump();
  if (answer.statusCode < 200 || answer.statusCode >= 300) throw new Error(`${target} answered ${answer.statusCode} to the checkpoint`);
}
