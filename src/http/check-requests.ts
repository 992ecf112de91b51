// The app's declared checks, answered like REST requests by one version's code from this
// replica's committed state, through a dry-run transaction: nothing is proposed, a write is
// discarded, and live traffic never sees a check. A check passes when the status is the one it
// expects (any 2xx if it names none) and the JSON answer contains what it lists.
import { firstMismatch, type CheckFailure, type ChecksResult } from '../app/checks.js';
import type { AppHost } from '../app/app-host.js';
import type { CheckSpec } from '../app/config.js';
import { RequestRunner } from '../app/request-runner.js';
import type { AppRuntime } from '../app/runtime.js';
import { Problem } from '../model/problem.js';
import { responseCodec } from './content.js';
import { asProblem, problemStatus } from './problem.js';
import { execute, methodsByHttp, parseId, targetQuery } from './rest.js';
import { parsePath } from './server.js';

/** A check that has not answered by then fails. */
export const checkTimeoutMs = 5_000;

export async function runChecks(host: AppHost, runtime: AppRuntime): Promise<ChecksResult> {
  const failed: CheckFailure[] = [];
  for (const check of runtime.config.checks) {
    const reason = await withTimeout(runCheck(host, runtime, check), check);
    if (reason !== undefined) failed.push({ name: check.name, reason });
  }
  return { total: runtime.config.checks.length, failed };
}

function withTimeout(pending: Promise<string | undefined>, check: CheckSpec): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolveTimeout) => {
    timer = setTimeout(() => resolveTimeout(`${check.method} ${check.path} did not answer within ${checkTimeoutMs} ms`), checkTimeoutMs);
  });
  return Promise.race([pending, timeout]).finally(() => clearTimeout(timer));
}

/** One check; undefined when it passed, else why not. */
async function runCheck(host: AppHost, runtime: AppRuntime, check: CheckSpec): Promise<string | undefined> {
  const what = `${check.method} ${check.path}`;
  let status: number;
  let payload: Buffer | string | undefined;
  try {
    const path = parsePath(`/${encodeURIComponent(host.name)}${check.path}`);
    if (path === undefined) throw new Problem('not-found', { detail: `${check.path} names no table or resource` });
    const endpoint = runtime.endpoints.get(path.endpoint);
    if (endpoint === undefined) throw new Problem('not-found', { detail: `version ${runtime.version} has no table or resource '${path.endpoint}'` });
    const method = methodsByHttp[check.method];
    if (method === undefined) throw new Problem('method-not-allowed', { detail: `${check.method} is not a REST method` });
    const isCollection = path.id === undefined;
    const query = targetQuery(method, isCollection, path.search);
    const target = { ...(path.id === undefined ? {} : { id: parseId(path.id, endpoint) }), query, pathname: `/${host.name}${check.path}` };
    const codec = responseCodec('application/json', isCollection && method === 'get');
    if (codec === undefined) throw new Error('no JSON codec');
    const runner = new RequestRunner(host, {}, runtime);
    const request = { method: check.method, headers: { ...check.headers, 'x-lockstep-check': check.name } };
    const outcome = await execute(runner, path.endpoint, method, target, check.body, request, undefined, undefined, codec, query.select);
    status = outcome.status;
    payload = outcome.payload;
  } catch (error) {
    const problem = asProblem(error);
    status = problemStatus(problem);
    if (status === check.status) return undefined; // a check may expect a refusal (404, 409 ...)
    const cause = error instanceof Problem ? (problem.detail ?? problem.kind) : String(error);
    return `${what} answered ${status}, not ${check.status ?? '2xx'}: ${cause}`;
  }
  if (check.status === undefined ? status < 200 || status > 299 : status !== check.status) return `${what} answered ${status}, not ${check.status ?? '2xx'}`;
  if (check.contains === undefined) return undefined;
  if (payload === undefined) return `${what} answered with no body, and the check expects one`;
  const mismatch = firstMismatch(JSON.parse(payload.toString()) as unknown, check.contains);
  return mismatch === undefined ? undefined : `${what}: ${mismatch}`;
}
