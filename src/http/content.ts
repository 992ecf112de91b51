// Content negotiation: which codec writes a response (Accept) and which reads a request body
// (Content-Type). JSON is the default and the hot path, so it is JSON.parse/JSON.stringify with
// nothing in between unless the body could carry a `__proto__` key.

import assert from 'node:assert/strict';
import { Decoder as CborDecoder, Encoder as CborEncoder } from 'cbor-x';
import { stringify as stringifyCsv } from 'csv-stringify/sync';
import { Packr, Unpackr } from 'msgpackr';
import { isUtf8 } from 'node:buffer';
import { Problem } from '../model/problem.js';
import { hasLoneSurrogate } from '../state/key-limits.js';

export interface Codec {
  readonly mediaType: string;
  encode(value: unknown): Buffer | string;
  decode(body: Buffer): unknown;
}

/** Entries of an Accept header beyond this are ignored: clients send a handful, attackers thousands. */
const acceptEntriesMax = 32;
/** Parser messages echo part of the body; cap what reaches the problem detail. */
const errorDetailCharsMax = 200;

function malformedBody(format: string, error: unknown): Problem {
  const reason = error instanceof Error ? error.message : String(error);
  const detail = `body is not valid ${format}: ${reason}`.slice(0, errorDetailCharsMax);
  return new Problem('invalid', { detail, errors: [{ field: 'body', message: detail }], type: 'malformed-body' });
}

function rejectPrototypeKey(key: string, value: unknown): unknown {
  // JSON.parse itself only creates an own property named __proto__, but the first spread or
  // merge of that object into another would set its prototype; refusing the key is simplest.
  if (key === '__proto__') {
    const message = "the key '__proto__' is not allowed";
    throw new Problem('invalid', { detail: `body is not acceptable: ${message}`, errors: [{ field: 'body', message }], type: 'malformed-body' });
  }
  // A \uD800-style escape without its pair is not a Unicode string: it could be stored, but not
  // answered as UTF-8 and read back the same. Refused, not rewritten.
  if (hasLoneSurrogate(key) || (typeof value === 'string' && hasLoneSurrogate(value))) {
    const message = `${typeof value === 'string' && hasLoneSurrogate(value) ? `the value of '${key.slice(0, 64)}'` : 'a key'} has a lone surrogate (\\uD800-\\uDFFF without its pair)`;
    throw new Problem('invalid', { detail: `body is not acceptable: ${message}`, errors: [{ field: key === '' ? 'body' : key.slice(0, 64), message }], type: 'malformed-body' });
  }
  return value;
}

const jsonCodec: Codec = {
  mediaType: 'application/json',
  encode: (value) => JSON.stringify(value) ?? 'null',
  decode(body) {
    // Invalid UTF-8 would be rewritten as U+FFFD by the decoder; refuse it instead.
    if (!isUtf8(body)) throw malformedBody('JSON', new Error('the body is not valid UTF-8'));
    const decoded = body.toString('utf8');
    // RFC 8259 lets a parser ignore a leading byte order mark; JSON.parse would reject it.
    const text = decoded.charCodeAt(0) === 0xfeff ? decoded.slice(1) : decoded;
    // Only a body that spells __proto__, literally or with \u escapes, pays for the reviver.
    const needsReviver = text.includes('__proto__') || text.includes('\\u');
    let parsed: unknown;
    try {
      parsed = needsReviver ? JSON.parse(text, rejectPrototypeKey) : JSON.parse(text);
    } catch (error) {
      if (error instanceof Problem) throw error;
      throw malformedBody('JSON', error);
    }
    return plainBody(parsed, 0);
  },
};

/** Deepest nesting a request body may have. Deeper values would overflow the stack of the
 *  validators and encoders further down (a 9 KB body can nest thousands of levels). */
export const bodyDepthMax = 64;

function bodyProblem(message: string): Problem {
  return new Problem('invalid', { detail: `body is not acceptable: ${message}`, errors: [{ field: 'body', message }], type: 'malformed-body' });
}

/**
 * Checks a decoded body's depth and turns CBOR/MessagePack maps into plain objects. Maps are
 * decoded as Map (not objects) so that a `__proto__` key arrives as it was sent - the decoders'
 * object mode silently renames it - and is refused like in JSON.
 */
function plainBody(value: unknown, depth: number): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (depth >= bodyDepthMax) throw bodyProblem(`nested deeper than ${bodyDepthMax} levels`);
  if (value instanceof Map) {
    const record: Record<string, unknown> = {};
    for (const [key, element] of value) {
      if (typeof key !== 'string') throw bodyProblem('map keys must be strings');
      if (key === '__proto__') throw bodyProblem("the key '__proto__' is not allowed");
      record[key] = plainBody(element, depth + 1);
    }
    return record;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = plainBody(value[i], depth + 1);
    return value;
  }
  if (value instanceof Uint8Array || value instanceof Date) return value;
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) record[key] = plainBody(record[key], depth + 1);
  return record;
}

// Records (cbor-x/msgpackr's shared-structure extension) are off: other clients cannot read them.
const cborEncoder = new CborEncoder({ useRecords: false });
const cborDecoder = new CborDecoder({ useRecords: false, mapsAsObjects: false });

const cborCodec: Codec = {
  mediaType: 'application/cbor',
  encode: (value) => cborEncoder.encode(value),
  decode(body) {
    let decoded: unknown;
    try {
      decoded = cborDecoder.decode(body);
    } catch (error) {
      throw malformedBody('CBOR', error);
    }
    return plainBody(decoded, 0);
  },
};

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: false });

function msgpackCodec(mediaType: string): Codec {
  return {
    mediaType,
    encode: (value) => packr.pack(value),
    decode(body) {
      let decoded: unknown;
      try {
        decoded = unpackr.unpack(body);
      } catch (error) {
        throw malformedBody('MessagePack', error);
      }
      return plainBody(decoded, 0);
    },
  };
}

const msgpackCodecs = { 'application/msgpack': msgpackCodec('application/msgpack'), 'application/x-msgpack': msgpackCodec('application/x-msgpack') };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const csvCodec: Codec = {
  mediaType: 'text/csv',
  encode(value) {
    assert(Array.isArray(value) && value.every(isRecord), 'CSV encodes collections: an array of records');
    return encodeCsv(value);
  },
  decode() {
    throw new Problem('unsupported-media-type', { detail: 'text/csv request bodies are not supported' });
  },
};

function csvCell(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  return JSON.stringify(value) ?? '';
}

/** RFC 4180 CSV with a header row. Columns are the select list, or every key in first-seen order;
 *  nested values are JSON in their cell, binary is base64, null and absent are empty. */
export function encodeCsv(records: readonly Record<string, unknown>[], columns?: readonly string[]): string {
  let header: readonly string[];
  if (columns !== undefined) header = columns;
  else {
    const seen = new Set<string>();
    for (const record of records) for (const key of Object.keys(record)) seen.add(key);
    header = [...seen];
  }
  if (header.length === 0) return '';
  const rows = records.map((record) => header.map((column) => csvCell(record[column])));
  // csv-stringify quotes a field only if it holds the record delimiter (CRLF); a bare LF or CR
  // must be quoted too, or readers split the record there.
  return stringifyCsv([[...header], ...rows], { record_delimiter: '\r\n', quoted_match: /[\r\n]/ });
}

// ---- Accept

interface MediaRange {
  readonly type: string;
  readonly subtype: string;
  readonly quality: number;
  readonly order: number;
}

const tokenPattern = /^[a-z0-9!#$&^_.+-]+$/;
const qualityPattern = /^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)$/;

function parseAccept(accept: string): MediaRange[] {
  const ranges: MediaRange[] = [];
  for (const [order, entry] of accept.split(',').slice(0, acceptEntriesMax).entries()) {
    const [mediaType = '', ...parameters] = entry.split(';');
    const [type = '', subtype = '', extra] = mediaType.trim().toLowerCase().split('/');
    const typeValid = type === '*' ? subtype === '*' : tokenPattern.test(type) && (subtype === '*' || tokenPattern.test(subtype));
    if (extra !== undefined || !typeValid) continue;
    let quality = 1;
    let valid = true;
    for (const parameter of parameters) {
      const [name = '', value = ''] = parameter.split('=').map((part) => part.trim().toLowerCase());
      if (name !== 'q') continue;
      if (qualityPattern.test(value)) quality = Number(value);
      else valid = false;
    }
    if (valid) ranges.push({ type, subtype, quality, order });
  }
  return ranges;
}

/** How specifically a range names a media type: 3 exact, 2 `type/*`, 1 the full wildcard, 0 no match. */
function specificity(range: MediaRange, mediaType: string): number {
  const [type, subtype] = mediaType.split('/');
  if (range.type === '*') return 1;
  if (range.type !== type) return 0;
  if (range.subtype === '*') return 2;
  return range.subtype === subtype ? 3 : 0;
}

/** Picks the response codec from Accept (q-values, wildcards, full wildcard, missing = JSON). `collection`
 *  enables text/csv. Returns undefined if nothing acceptable (router answers 406). */
export function responseCodec(accept: string | undefined, collection: boolean): Codec | undefined {
  if (accept === undefined || accept === '*/*' || accept === 'application/json') return jsonCodec;
  // Clients repeat the same few Accept strings; negotiating one costs ~9 us, a lookup ~0.1 us.
  const cache = collection ? collectionChoices : recordChoices;
  const cached = cache.get(accept);
  if (cached !== undefined) return cached === 'none' ? undefined : cached;
  const codec = negotiate(accept, collection);
  if (cache.size >= acceptCacheEntriesMax) cache.clear();
  cache.set(accept, codec ?? 'none');
  return codec;
}

/** Distinct Accept strings remembered per kind of resource; the cache is dropped when full. */
const acceptCacheEntriesMax = 256;
const collectionChoices = new Map<string, Codec | 'none'>();
const recordChoices = new Map<string, Codec | 'none'>();

function negotiate(accept: string, collection: boolean): Codec | undefined {
  if (accept.trim() === '') return jsonCodec;
  const ranges = parseAccept(accept);
  // An Accept header with nothing we can read is treated as absent rather than as "nothing".
  if (ranges.length === 0) return jsonCodec;
  // Server preference breaks the remaining ties: JSON first.
  const offered: Codec[] = [jsonCodec, cborCodec, msgpackCodecs['application/x-msgpack'], msgpackCodecs['application/msgpack']];
  if (collection) offered.push(csvCodec);

  let best: { codec: Codec; quality: number; specificity: number; order: number } | undefined;
  for (const codec of offered) {
    // RFC 9110 12.5.1: the most specific matching range sets the quality.
    let match: { quality: number; specificity: number; order: number } | undefined;
    for (const range of ranges) {
      const level = specificity(range, codec.mediaType);
      if (level > 0 && (match === undefined || level > match.specificity)) match = { quality: range.quality, specificity: level, order: range.order };
    }
    if (match === undefined || match.quality === 0) continue;
    const better =
      best === undefined ||
      match.quality > best.quality ||
      (match.quality === best.quality && (match.specificity > best.specificity || (match.specificity === best.specificity && match.order < best.order)));
    if (better) best = { codec, ...match };
  }
  return best?.codec;
}

/** Codec for a request body by Content-Type (parameters like charset ignored; missing = JSON).
 *  undefined = unsupported (router answers 415). */
export function requestCodec(contentType: string | undefined): Codec | undefined {
  const mediaType = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  if (mediaType === '' || mediaType === 'application/json') return jsonCodec;
  if (mediaType === 'application/cbor') return cborCodec;
  if (mediaType === 'application/msgpack' || mediaType === 'application/x-msgpack') return msgpackCodecs[mediaType];
  // Structured-syntax suffix (RFC 6839): application/merge-patch+json and friends are JSON.
  if (/^application\/[a-z0-9!#$&^_.-]+\+json$/.test(mediaType)) return jsonCodec;
  return undefined;
}
