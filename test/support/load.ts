// Concurrent client loops for integration tests: N clients each run `step` in a loop until told to
// stop, an error ends that client, or a hard deadline passes. Bounded in time by construction.

export interface LoadOptions {
  readonly clients: number;
  /** Hard upper bound on the whole load, whatever `stop` does. */
  readonly deadlineMs: number;
  /** One iteration of one client; a thrown error ends that client and is recorded. */
  step(client: number, sequence: number): Promise<void>;
}

export interface LoadRun {
  /** Ask every client to finish its current step and stop. */
  stop(): void;
  /** Resolves when every client has stopped; the errors that ended clients, by client. */
  done: Promise<Map<number, unknown>>;
}

export function startLoad(options: LoadOptions): LoadRun {
  let stopped = false;
  const deadline = Date.now() + options.deadlineMs;
  const errors = new Map<number, unknown>();
  const loops = Array.from({ length: options.clients }, async (_unused, client) => {
    for (let sequence = 0; !stopped && Date.now() < deadline; sequence++) {
      try {
        await options.step(client, sequence);
      } catch (error) {
        errors.set(client, error);
        return;
      }
    }
  });
  return {
    stop: () => {
      stopped = true;
    },
    done: Promise.all(loops).then(() => errors),
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
