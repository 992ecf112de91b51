// Checks a whole history: split it into independent parts (Porcupine's per-key partitioning,
// which turns one exponential search into many small ones), search each under a shared budget.

import { searchPartition, type SearchBudget } from './search.js';
import type { Model, Operation } from './model.js';

export interface CheckOptions {
  /** Wall-clock budget for the whole history; past it the verdict is 'unknown'. */
  readonly timeoutMs?: number;
  /** Search-step budget for the whole history (deterministic, unlike the clock). */
  readonly stepsMax?: number;
}

export const checkTimeoutMsDefault = 10_000;
export const checkStepsMaxDefault = 200_000_000;

export type CheckResult<Input, Output> =
  | { readonly ok: true; readonly verdict: 'linearizable' }
  | {
      readonly ok: false;
      /** 'illegal': no linearization exists. 'unknown': the budget ran out before the search
       *  decided; treat as "not shown linearizable", not as a violation. */
      readonly verdict: 'illegal' | 'unknown';
      /** The partition (e.g. key) that failed. */
      readonly key: string;
      readonly reason: string;
      /** The longest prefix of that partition's operations the search could linearize. */
      readonly partialLinearization: readonly Operation<Input, Output>[];
    };

/** Partition key used when the model does not partition. */
const wholeHistoryKey = '*';

export function checkOperations<State, Input, Output>(
  model: Model<State, Input, Output>,
  operations: readonly Operation<Input, Output>[],
  options: CheckOptions = {},
): CheckResult<Input, Output> {
  const budget: SearchBudget = {
    deadlineMs: performance.now() + (options.timeoutMs ?? checkTimeoutMsDefault),
    stepsLeft: options.stepsMax ?? checkStepsMaxDefault,
  };
  const partitions =
    model.partition?.(operations) ?? new Map([[wholeHistoryKey, [...operations]]]);
  const describe = (operation: Operation<Input, Output>): string =>
    model.describe?.(operation) ?? JSON.stringify(operation);

  // Smallest parts first: a violation in a small part is found before a big part eats the budget.
  const ordered = [...partitions.entries()].sort((a, b) => a[1].length - b[1].length);
  for (const [key, part] of ordered) {
    const result = searchPartition(model, part, budget);
    if (result.verdict === 'linearizable') continue;
    const partialLinearization = result.partialLinearization.map((i) => part[i]!);
    if (result.verdict === 'unknown') {
      return {
        ok: false,
        verdict: 'unknown',
        key,
        reason: `search budget exhausted on ${key} (${part.length} operations)`,
        partialLinearization,
      };
    }
    const blocked = part[result.blockedOperation]!;
    return {
      ok: false,
      verdict: 'illegal',
      key,
      reason:
        `no linearization of ${key} (${part.length} operations): after linearizing ` +
        `${partialLinearization.length} of them, ${describe(blocked)} returned before it ` +
        `could be placed`,
      partialLinearization,
    };
  }
  return { ok: true, verdict: 'linearizable' };
}
