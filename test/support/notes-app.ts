// A small app for rollout tests: one table and a Hello resource whose greeting tells which
// version answered; a version can be made slow to load (a top-level await) to hold a rollout
// between its stage and its activate. And the wait for a rollout to be staged.
import { pollUntil } from './cluster.js';
import type { Fleet } from './fleet.js';

export const notesSchema = `type Note @table {
  id: ID @primaryKey
  text: String!
}
`;

export function notesResources(greeting: string, loadDelayMs = 0): string {
  const delay = loadDelayMs > 0 ? `await new Promise((resolve) => setTimeout(resolve, ${loadDelayMs}));\n` : '';
  return `${delay}import { Resource } from 'lockstep';
export class Hello extends Resource {
  async get() {
    return { greeting: '${greeting}' };
  }
}
`;
}

export function notesFiles(greeting: string): Record<string, string> {
  return { 'schema.graphql': notesSchema, 'config.yaml': 'name: notes\n', 'resources.ts': notesResources(greeting) };
}

/** Waits until the app's rollout in progress has been staged in its group. */
export async function waitForStaged(fleet: Fleet, app: string): Promise<void> {
  await pollUntil(
    async () => {
      const status = await fleet.ctlJson<{ rollout: { stagedAs: number | null } | null }>(['status', app]).catch(() => undefined);
      return status?.rollout?.stagedAs !== null && status?.rollout?.stagedAs !== undefined ? true : undefined;
    },
    30_000,
    `the rollout of ${app} to be staged`,
  );
}
