// What running an app's declared checks (config.yaml `checks`) against one version yields, and
// how an answer is compared with what a check expects. The requests themselves are answered by
// the HTTP layer (src/http/check-requests.ts), handed to the app host as a CheckRunner.
import type { AppHost } from './app-host.js';
import type { AppRuntime } from './runtime.js';

export interface CheckFailure {
  readonly name: string;
  readonly reason: string;
}

export interface ChecksResult {
  readonly total: number;
  readonly failed: readonly CheckFailure[];
}

/** Runs every check of `runtime.config` against `runtime` on this replica; never proposes. */
export type CheckRunner = (host: AppHost, runtime: AppRuntime) => Promise<ChecksResult>;

/** "check 'list products' failed: ...; check 'health' failed: ..." */
export function describeFailures(result: ChecksResult): string {
  return result.failed.map((failure) => `check '${failure.name}' failed: ${failure.reason}`).join('; ');
}

/**
 * Whether `actual` contains `expected`: a primitive equals it, an object has each expected key
 * with a value that contains the expected one, an array has, for each expected element, some
 * element that contains it. Returns the dotted path of the first mismatch, or undefined.
 */
export function firstMismatch(actual: unknown, expected: unknown, path = '$'): string | undefined {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${path} is not an array`;
    for (let position = 0; position < expected.length; position++) {
      const wanted: unknown = expected[position];
      if (!actual.some((element: unknown) => firstMismatch(element, wanted) === undefined)) return `${path} has no element matching ${JSON.stringify(wanted)}`;
    }
    return undefined;
  }
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return `${path} is not an object`;
    for (const [key, wanted] of Object.entries(expected)) {
      if (!(key in actual)) return `${path}.${key} is missing`;
      const mismatch = firstMismatch((actual as Record<string, unknown>)[key], wanted, `${path}.${key}`);
      if (mismatch !== undefined) return mismatch;
    }
    return undefined;
  }
  return Object.is(actual, expected) ? undefined : `${path} is ${JSON.stringify(actual)}, not ${JSON.stringify(expected)}`;
}
