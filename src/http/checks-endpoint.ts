// POST /_checks/<app>: runs the app's declared checks (config.yaml `checks`) against the active
// version on this replica, as prepare and validation run them - dry, every write discarded - and
// answers what passed. An agent validating what it deployed asks each replica; it needs `deploy`
// on the app (the checks run the app's code).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AppHost } from '../app/app-host.js';
import { Problem } from '../model/problem.js';
import { runChecks } from './check-requests.js';

export async function answerChecks(apps: ReadonlyMap<string, AppHost>, nodeId: string, req: IncomingMessage, res: ServerResponse, path: string): Promise<number> {
  if (req.method !== 'POST') throw new Problem('method-not-allowed', { detail: 'checks are run with POST', headers: { Allow: 'POST' } });
  const segments = path.split('/');
  if (segments.length !== 3) throw new Problem('not-found', { detail: 'the checks endpoint is POST /_checks/<app>' });
  let name: string;
  try {
    name = decodeURIComponent(segments[2] ?? '');
  } catch {
    throw new Problem('invalid', { detail: 'malformed percent-encoding in the app name' });
  }
  const host = apps.get(name);
  if (host === undefined) throw new Problem('not-found', { detail: `this node hosts no app '${name}'` });
  const runtime = host.activeRuntime();
  if (runtime === undefined) throw new Problem('unavailable', { detail: `${name} has no active version on this node yet`, headers: { 'Retry-After': '1' } });
  const started = performance.now();
  const result = await runChecks(host, runtime);
  const body = { app: name, node: nodeId, version: runtime.version, hash: runtime.hash, ...result, ms: Math.round(performance.now() - started) };
  res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
  return 200;
}
