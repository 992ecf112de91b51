// `clusterctl audit`: the control plane's audit trail - list it, take a checkpoint of its head to
// keep outside the cluster, and verify the stored chain (against a checkpoint, if given).
import { readFileSync } from 'node:fs';
import { exportCheckpoint, isUrlTarget } from '../control/audit-export.js';
import { ExitError, type ControlClient, type Json } from './control-client.js';
import { table } from './text-table.js';

export interface AuditOptions {
  readonly app: string | undefined;
  readonly actor: string | undefined;
  readonly since: string | undefined;
  readonly limit: string | undefined;
  readonly checkpoint: string | undefined;
  readonly out: string | undefined;
}

type Print = (body: Json, render: (body: Json) => string) => void;

function recordsText(body: Json): string {
  const records = (body.records ?? []) as Json[];
  if (records.length === 0) return 'no audit records match\n';
  return table(
    ['SEQ', 'AT', 'ACTOR', 'OP', 'TARGET', 'OUTCOME', 'DETAIL'],
    records.map((r) => [String(r.seq), new Date(Number(r.at)).toISOString(), String(r.actor), String(r.op), String(r.target), String(r.outcome), r.reason === undefined ? String(r.detail) : `${String(r.detail)}${r.detail === '' ? '' : ': '}${String(r.reason)}`]),
  );
}

const checkpointFields = ['seq', 'hash', 'at', 'signer', 'publicKey', 'signature'] as const;

function readCheckpoint(path: string): Record<(typeof checkpointFields)[number], string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ExitError(2, `--checkpoint ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const checkpoint = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
  const fields = {} as Record<(typeof checkpointFields)[number], string>;
  for (const field of checkpointFields) {
    const value = checkpoint[field];
    if (typeof value !== 'string' && typeof value !== 'number') throw new ExitError(2, `--checkpoint ${path} is not a checkpoint written by clusterctl audit checkpoint (no ${field})`);
    fields[field] = String(value);
  }
  return fields;
}

export async function runAudit(client: ControlClient, positionals: readonly string[], options: AuditOptions, print: Print): Promise<number> {
  const [sub, ...extra] = positionals;
  if (extra.length > 0) throw new ExitError(2, `audit ${sub ?? ''} takes no further arguments`);
  if (sub === undefined) {
    const query = new URLSearchParams();
    for (const [key, value] of [['app', options.app], ['actor', options.actor], ['since', options.since], ['limit', options.limit]] as const) if (value !== undefined) query.set(key, value);
    const body = await client.expect('GET', `/v1/audit${query.size > 0 ? `?${query.toString()}` : ''}`);
    print(body, recordsText);
    return 0;
  }
  if (sub === 'checkpoint') {
    const body = await client.expect('GET', '/v1/audit/checkpoint');
    const text = `${JSON.stringify(body, null, 2)}\n`;
    if (options.out === undefined) process.stdout.write(text);
    else {
      try {
        await exportCheckpoint(options.out, body);
      } catch (error) {
        throw new ExitError(1, `could not send the checkpoint to ${options.out}: ${error instanceof Error ? error.message : String(error)}`);
      }
      process.stdout.write(`checkpoint of record ${String(body.seq)} (${String(body.hash).slice(0, 12)}), signed by ${String(body.signer)}, ${isUrlTarget(options.out) ? 'sent' : 'written'} to ${options.out}; keep it outside the cluster\n`);
    }
    return 0;
  }
  if (sub === 'verify') {
    const checkpoint = options.checkpoint === undefined ? undefined : readCheckpoint(options.checkpoint);
    const query = checkpoint === undefined ? '' : `?${new URLSearchParams(checkpoint).toString()}`;
    const body = await client.expect('GET', `/v1/audit/verify${query}`);
    print(body, (result) => {
      const head = result.head as Json;
      if (result.ok === true) return `audit trail verified: ${String(result.records)} records, head record ${String(head.seq)} (${String(head.hash).slice(0, 12)})${checkpoint === undefined ? '' : `, checkpoint record ${checkpoint.seq} holds`}\n`;
      if (typeof result.checkpointProblem === 'string') return `checkpoint refused: ${result.checkpointProblem}\n`;
      const bad = result.firstBad as Json;
      return `audit trail broken at record ${String(bad.seq)}: ${String(bad.problem)}\n`;
    });
    return body.ok === true ? 0 : 1;
  }
  throw new ExitError(2, `audit takes no subcommand, verify or checkpoint, not '${sub}'`);
}
