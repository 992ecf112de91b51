// How a check's `contains` is compared with an answer: objects by the keys it lists, arrays by
// some matching element for each listed one, everything else by equality.
import { describe, expect, it } from 'vitest';
import { firstMismatch } from '../../src/app/checks.js';

describe('firstMismatch', () => {
  it('accepts an answer that contains every listed key and element', () => {
    const answer = { total: 3, items: [{ id: 'a', tags: ['x', 'y'] }, { id: 'b' }], extra: true };
    expect(firstMismatch(answer, { total: 3 })).toBeUndefined();
    expect(firstMismatch(answer, { items: [{ id: 'b' }, { tags: ['y'] }] })).toBeUndefined();
    expect(firstMismatch(answer, {})).toBeUndefined();
    expect(firstMismatch(null, null)).toBeUndefined();
  });

  it('names the first place that differs', () => {
    const answer = { total: 3, items: [{ id: 'a' }], nested: { deep: { value: 1 } } };
    expect(firstMismatch(answer, { total: 4 })).toBe('$.total is 3, not 4');
    expect(firstMismatch(answer, { missing: 1 })).toBe('$.missing is missing');
    expect(firstMismatch(answer, { nested: { deep: { value: '1' } } })).toBe('$.nested.deep.value is 1, not "1"');
    expect(firstMismatch(answer, { items: [{ id: 'z' }] })).toBe('$.items has no element matching {"id":"z"}');
    expect(firstMismatch(answer, { total: [] })).toBe('$.total is not an array');
    expect(firstMismatch([1], { a: 1 })).toBe('$ is not an object');
    expect(firstMismatch({ a: null }, { a: {} })).toBe('$.a is not an object');
  });
});
