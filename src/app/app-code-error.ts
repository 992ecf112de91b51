// An exception thrown by an app's own code (a resource method, a table class it extended): a bug
// in the app, answered as 500 with a body that names the resource and method so its author can
// find it, logged with the stack, and counted per app version (a rollout's validation window
// watches that count).
import { Problem } from '../model/problem.js';
import type { AppVersion } from '../model/ids.js';

/** Characters of the app's error message kept in the answer. */
const messageCharsMax = 300;

export class AppCodeError extends Problem {
  constructor(
    readonly app: string,
    readonly version: AppVersion,
    readonly resource: string,
    readonly method: string,
    override readonly cause: unknown,
  ) {
    const reason = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    super('internal', {
      type: 'app-error',
      detail: `${resource}.${method} of app ${app} (version ${version}) threw ${reason.slice(0, messageCharsMax)}`,
    });
  }
}
