// The order and equality of node ids that every member of the control group computes alike:
// by code unit, never by the locale, so that a placement sorts the same way on every node.
import type { NodeId } from '../model/ids.js';

export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function sortedIds(ids: Iterable<NodeId>): NodeId[] {
  return [...ids].sort(compareIds);
}

/** The same ids, in any order (each list without duplicates). */
export function sameIds(a: readonly NodeId[], b: readonly NodeId[]): boolean {
  if (a.length !== b.length) return false;
  const sortedB = sortedIds(b);
  return sortedIds(a).every((id, index) => id === sortedB[index]);
}
