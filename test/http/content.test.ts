import { decode as cborDecode, encode as cborEncode } from 'cbor-x';
import { pack, unpack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { encodeCsv, requestCodec, responseCodec, type Codec } from '../../src/http/content.js';
import { problemStatus } from '../../src/http/problem.js';
import { Problem } from '../../src/model/problem.js';

const sample = { id: 7, name: 'Zoë', price: 12.5, inStock: true, tags: ['a', 'b'], address: { city: 'Lyon', zip: null } };

function mediaTypeOf(accept: string | undefined, collection = false): string | undefined {
  return responseCodec(accept, collection)?.mediaType;
}

function decodeFailure(codec: Codec, body: Buffer): Problem {
  try {
    codec.decode(body);
  } catch (error) {
    expect(error).toBeInstanceOf(Problem);
    return error as Problem;
  }
  throw new Error('expected the body to be rejected');
}

function codecFor(contentType: string): Codec {
  const codec = requestCodec(contentType);
  if (codec === undefined) throw new Error(`no codec for ${contentType}`);
  return codec;
}

describe('responseCodec: negotiation', () => {
  it('defaults to JSON when Accept is missing, empty or unreadable', () => {
    expect(mediaTypeOf(undefined)).toBe('application/json');
    expect(mediaTypeOf('')).toBe('application/json');
    expect(mediaTypeOf('garbage')).toBe('application/json');
    expect(mediaTypeOf('*/*')).toBe('application/json');
    expect(mediaTypeOf('application/*')).toBe('application/json');
  });

  it('honours explicit types', () => {
    expect(mediaTypeOf('application/cbor')).toBe('application/cbor');
    expect(mediaTypeOf('application/x-msgpack')).toBe('application/x-msgpack');
    expect(mediaTypeOf('application/msgpack')).toBe('application/msgpack');
    expect(mediaTypeOf('APPLICATION/CBOR')).toBe('application/cbor');
    expect(mediaTypeOf('application/json; charset=utf-8')).toBe('application/json');
  });

  it('follows q-values, and lets q=0 exclude', () => {
    expect(mediaTypeOf('application/json;q=0.5, application/cbor;q=0.9')).toBe('application/cbor');
    expect(mediaTypeOf('application/json;q=0.5, application/cbor')).toBe('application/cbor');
    expect(mediaTypeOf('application/json;q=0, */*;q=0.1')).toBe('application/cbor');
    expect(mediaTypeOf('*/*;q=0')).toBeUndefined();
    expect(mediaTypeOf('application/cbor;q=0')).toBeUndefined();
  });

  it('prefers an explicit match over a wildcard at equal quality, then the client order', () => {
    expect(mediaTypeOf('*/*, application/x-msgpack')).toBe('application/x-msgpack');
    expect(mediaTypeOf('application/cbor, application/x-msgpack')).toBe('application/cbor');
    expect(mediaTypeOf('application/x-msgpack, application/cbor')).toBe('application/x-msgpack');
  });

  it('lets the most specific range set the quality', () => {
    // application/json is excluded even though application/* allows it.
    expect(mediaTypeOf('application/*;q=0.8, application/json;q=0')).toBe('application/cbor');
  });

  it('offers CSV for collections only', () => {
    expect(mediaTypeOf('text/csv', true)).toBe('text/csv');
    expect(mediaTypeOf('text/*', true)).toBe('text/csv');
    expect(mediaTypeOf('text/csv', false)).toBeUndefined();
    expect(mediaTypeOf('text/csv, application/json;q=0.1', false)).toBe('application/json');
    expect(mediaTypeOf('*/*', true)).toBe('application/json');
  });

  it('returns undefined when nothing offered is acceptable (406)', () => {
    expect(mediaTypeOf('text/html')).toBeUndefined();
    expect(mediaTypeOf('image/png, text/html;q=0.9')).toBeUndefined();
  });

  it('answers repeated and many distinct Accept strings the same way (choices are cached)', () => {
    for (let round = 0; round < 2; round++) {
      expect(mediaTypeOf('text/csv', true)).toBe('text/csv');
      expect(mediaTypeOf('text/csv', false)).toBeUndefined();
      expect(mediaTypeOf('text/html')).toBeUndefined();
    }
    for (let index = 0; index < 600; index++) {
      expect(mediaTypeOf(`application/cbor;q=0.${index % 9 + 1}, application/json;q=0.05, x/y${index}`)).toBe('application/cbor');
    }
    expect(mediaTypeOf('text/csv', true)).toBe('text/csv');
  });

  it('skips malformed entries and bad q-values but keeps the rest', () => {
    expect(mediaTypeOf('application/cbor;q=2, application/x-msgpack')).toBe('application/x-msgpack');
    expect(mediaTypeOf('*/json, application/cbor;q=0.5')).toBe('application/cbor');
    expect(mediaTypeOf(',,application/cbor,,')).toBe('application/cbor');
  });
});

describe('requestCodec', () => {
  it('maps Content-Type to a codec, ignoring parameters', () => {
    expect(requestCodec(undefined)?.mediaType).toBe('application/json');
    expect(requestCodec('')?.mediaType).toBe('application/json');
    expect(requestCodec('application/json; charset=utf-8')?.mediaType).toBe('application/json');
    expect(requestCodec('Application/JSON')?.mediaType).toBe('application/json');
    expect(requestCodec('application/merge-patch+json')?.mediaType).toBe('application/json');
    expect(requestCodec('application/cbor')?.mediaType).toBe('application/cbor');
    expect(requestCodec('application/msgpack')?.mediaType).toBe('application/msgpack');
    expect(requestCodec('application/x-msgpack')?.mediaType).toBe('application/x-msgpack');
  });

  it('returns undefined for unsupported types (415)', () => {
    expect(requestCodec('text/csv')).toBeUndefined();
    expect(requestCodec('text/plain')).toBeUndefined();
    expect(requestCodec('application/x-www-form-urlencoded')).toBeUndefined();
  });
});

describe('codecs: round trips', () => {
  it.each(['application/json', 'application/cbor', 'application/msgpack', 'application/x-msgpack'])('%s', (mediaType) => {
    const codec = codecFor(mediaType);
    const encoded = codec.encode(sample);
    const bytes = typeof encoded === 'string' ? Buffer.from(encoded) : encoded;
    expect(codec.decode(bytes)).toEqual(sample);
    expect(Object.getPrototypeOf(codec.decode(bytes))).toBe(Object.prototype);
    const list = codec.encode([sample, { id: 8 }]);
    expect(codec.decode(typeof list === 'string' ? Buffer.from(list) : list)).toEqual([sample, { id: 8 }]);
  });

  it('speaks plain CBOR and MessagePack that other implementations read', () => {
    // Records (a cbor-x/msgpackr extension) would make these decode differently or fail elsewhere.
    expect(cborDecode(codecFor('application/cbor').encode([sample, sample]) as Buffer)).toEqual([sample, sample]);
    expect(codecFor('application/cbor').decode(cborEncode(sample))).toEqual(sample);
    expect(unpack(codecFor('application/msgpack').encode([sample, sample]) as Buffer)).toEqual([sample, sample]);
    expect(codecFor('application/x-msgpack').decode(pack(sample))).toEqual(sample);
    // A CBOR map is 0xa_ / 0xb_; a record extension would start with a tag (0xd_).
    const first = (codecFor('application/cbor').encode(sample) as Buffer)[0] ?? 0;
    expect(first >> 5).toBe(5);
  });

  it('encodes JSON with JSON.stringify exactly', () => {
    expect(codecFor('application/json').encode(sample)).toBe(JSON.stringify(sample));
    expect(codecFor('application/json').decode(Buffer.from('\ufeff{"a":1}'))).toEqual({ a: 1 });
  });
});

describe('codecs: malformed bodies are 400s with a clear detail', () => {
  it('JSON', () => {
    const problem = decodeFailure(codecFor('application/json'), Buffer.from('{"name": "x", }'));
    expect(problemStatus(problem)).toBe(400);
    expect(problem.detail).toMatch(/^body is not valid JSON: /);
    expect(problem.errors[0]?.field).toBe('body');
    expect(decodeFailure(codecFor('application/json'), Buffer.from('')).detail).toMatch(/^body is not valid JSON/);
  });

  it('CBOR and MessagePack', () => {
    expect(decodeFailure(codecFor('application/cbor'), Buffer.from([0xff, 0x01])).detail).toMatch(/^body is not valid CBOR: /);
    expect(decodeFailure(codecFor('application/cbor'), Buffer.from([0x01, 0x02])).detail).toMatch(/^body is not valid CBOR: /);
    expect(decodeFailure(codecFor('application/msgpack'), Buffer.from([0x92, 0x01])).detail).toMatch(/^body is not valid MessagePack: /);
    expect(decodeFailure(codecFor('application/x-msgpack'), Buffer.from([0xd9])).detail).toMatch(/^body is not valid MessagePack: /);
  });

  it('caps the detail length', () => {
    const problem = decodeFailure(codecFor('application/json'), Buffer.from(`{"a": ${'x'.repeat(5000)}}`));
    expect(problem.detail?.length).toBeLessThanOrEqual(200);
  });
});

describe('codecs: __proto__ keys', () => {
  it('rejects __proto__ in JSON, written plainly or with escapes, at any depth', () => {
    for (const body of ['{"__proto__": {"polluted": 1}}', '{"a": [{"\\u005f_proto__": {"polluted": 1}}]}', '{"a":{"__proto\\u005f_":1}}']) {
      const problem = decodeFailure(codecFor('application/json'), Buffer.from(body));
      expect(problemStatus(problem)).toBe(400);
      expect(problem.detail).toContain('__proto__');
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('still accepts escapes and the word proto elsewhere', () => {
    expect(codecFor('application/json').decode(Buffer.from('{"proto":"\\u00e9", "x":"__proto__"}'))).toEqual({ proto: 'é', x: '__proto__' });
  });

  it('refuses a __proto__ key in CBOR or MessagePack like in JSON, without polluting', () => {
    const hostile = JSON.parse('{"ok": 1, "__proto__": {"polluted": 1}}') as unknown;
    for (const [mediaType, bytes] of [['application/cbor', cborEncode(hostile)], ['application/msgpack', pack(hostile)]] as const) {
      try {
        codecFor(mediaType).decode(Buffer.from(bytes));
        expect.unreachable(`${mediaType} accepted a __proto__ key`);
      } catch (error) {
        expect(problemStatus(error as Problem)).toBe(400);
        expect((error as Problem).detail).toContain('__proto__');
      }
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('refuses bodies nested deeper than the limit, in every format', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = { a: deep };
    for (const [mediaType, bytes] of [['application/json', Buffer.from(JSON.stringify(deep))], ['application/cbor', cborEncode(deep)], ['application/msgpack', pack(deep)]] as const) {
      expect(() => codecFor(mediaType).decode(Buffer.from(bytes))).toThrow(/nested deeper/);
    }
  });
});

describe('encodeCsv', () => {
  it('writes a header of every key in first-seen order, nested values as JSON, quoting as needed', () => {
    const csv = encodeCsv([
      { id: 1, name: 'Hammer, large', price: 12.5 },
      { id: 2, name: 'Say "hi"', tags: ['a', 'b'], inStock: false },
      { id: 3, address: { city: 'Lyon' }, name: null, note: 'two\nlines' },
    ]);
    expect(JSON.stringify(csv)).toBe(JSON.stringify(
      [
        'id,name,price,tags,inStock,address,note',
        '1,"Hammer, large",12.5,,,,',
        '2,"Say ""hi""",,"[""a"",""b""]",false,,',
        '3,,,,,"{""city"":""Lyon""}","two\nlines"',
        '',
      ].join('\r\n')),
    );
  });

  it('uses the given columns (the select list), in that order', () => {
    expect(encodeCsv([{ id: 1, name: 'a', price: 2 }], ['price', 'id', 'missing'])).toBe('price,id,missing\r\n2,1,\r\n');
  });

  it('writes dates as ISO text and binary as base64', () => {
    expect(encodeCsv([{ at: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)), blob: Buffer.from('hi') }])).toBe('at,blob\r\n2024-01-02T03:04:05.000Z,aGk=\r\n');
  });

  it('is empty with no columns, and a header only with no records', () => {
    expect(encodeCsv([])).toBe('');
    expect(encodeCsv([], ['a', 'b'])).toBe('a,b\r\n');
  });

  it('is what the text/csv codec writes for a collection', () => {
    const codec = responseCodec('text/csv', true);
    expect(codec?.encode([{ a: 1 }, { b: true }])).toBe('a,b\r\n1,\r\n,true\r\n');
  });
});
