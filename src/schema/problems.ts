// Collects schema problems as "line:col: message" so that one parse reports every problem it
// can find instead of stopping at the first.

import { getLocation, type ASTNode, type GraphQLError, type Source } from 'graphql';

/** Keeps a hostile or broken schema from producing an unbounded error message. */
export const problemCountMax = 100;

interface LocatedProblem {
  readonly offset: number;
  readonly text: string;
}

export class ProblemList {
  readonly #source: Source;
  readonly #problems: LocatedProblem[] = [];

  constructor(source: Source) {
    this.#source = source;
  }

  get isEmpty(): boolean {
    return this.#problems.length === 0;
  }

  /** Reports a problem at a node of the user's document (or at 1:1 when it has none). */
  add(node: ASTNode | undefined, message: string): void {
    this.#addAtOffset(node?.loc?.start ?? 0, message);
  }

  /** Reports an error from graphql's parser or validation rules. When it names several
   *  locations (a duplicate, say), the last one is the offending repetition. */
  addGraphQLError(error: GraphQLError): void {
    const positions = error.positions ?? [];
    const nodes = error.nodes ?? [];
    const lastNodeOffset = nodes.length > 0 ? nodes[nodes.length - 1]?.loc?.start : undefined;
    const offset = positions.length > 0 ? positions[positions.length - 1] : lastNodeOffset;
    this.#addAtOffset(offset ?? 0, error.message);
  }

  #addAtOffset(offset: number, message: string): void {
    if (this.#problems.length >= problemCountMax) return;
    const { line, column } = getLocation(this.#source, offset);
    this.#problems.push({ offset, text: `${line}:${column}: ${message}` });
  }

  /** Problems in document order, which is how a reader fixes them. */
  toStrings(): string[] {
    return [...this.#problems].sort((a, b) => a.offset - b.offset).map((problem) => problem.text);
  }
}
