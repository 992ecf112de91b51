import { Problem } from '../model/problem.js';

/** A 400 for a malformed query string. `position` is the 0-based character offset in the query
 *  string as received (after the '?', before percent-decoding), so a client can point at it. */
export function querySyntaxError(message: string, position: number): Problem {
  const text = `${message} at position ${position}`;
  return new Problem('invalid', { detail: `invalid query: ${text}`, errors: [{ field: 'query', message: text }], type: 'invalid-query' });
}

/** A 400 for a well-formed query that cannot be run against this table (unknown or unindexed
 *  attribute, too many results). Names the query parameter so clients can map it to their input. */
export function queryRejected(message: string): Problem {
  return new Problem('invalid', { detail: message, errors: [{ field: 'query', message }], type: 'invalid-query' });
}
