// CRC-32 (IEEE 802.3, the zlib/PNG polynomial) for snapshot chunks. node:zlib's crc32 arrived
// in Node 22; we support Node 20, so a table-driven version lives here.
const polynomialReversed = 0xedb88320;

const table: Uint32Array = (() => {
  const result = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let bit = 0; bit < 8; bit++) c = c & 1 ? polynomialReversed ^ (c >>> 1) : c >>> 1;
    result[n] = c >>> 0;
  }
  return result;
})();

/** CRC-32 of `bytes`; pass the previous result as `crc` to continue over split input. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = table[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
