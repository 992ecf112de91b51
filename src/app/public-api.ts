// What `import ... from 'lockstep'` names. App code loaded by Lockstep gets these bound to the
// version being loaded (see compile.ts); this module gives the same names to tools and editors
// outside a running node, where there are no tables to reach.
export { Resource, type Target, type RequestInfo, type TableClass } from './resource.js';
export { Problem, type ProblemKind, type ProblemInit, type FieldError } from '../model/problem.js';
import type { TableClass } from './resource.js';

/** Tables exist only inside a running Lockstep node; outside one, touching them says so. */
export const tables: Readonly<Record<string, TableClass>> = new Proxy(
  {},
  {
    get(_target, name) {
      throw new Error(`tables.${String(name)} is only available to app code loaded by a Lockstep node`);
    },
  },
);
