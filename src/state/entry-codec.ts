// How an app's log entries are written into Raft entries: plain msgpack (no shared record
// structures), because entries are read by other nodes and by later versions of Lockstep, so
// they must decode without any out-of-band state.
import { Packr } from 'msgpackr';
import type { LogEntry } from '../model/app-entries.js';

const packr = new Packr({ useRecords: false, moreTypes: false });
const entryKinds = new Set(['write', 'stage', 'activate', 'abort']);

export const appEntryCodec = {
  encode(entry: LogEntry): Uint8Array {
    return packr.pack(entry);
  },
  decode(data: Uint8Array): LogEntry {
    const decoded = packr.unpack(data) as LogEntry;
    if (typeof decoded !== 'object' || decoded === null || !entryKinds.has(decoded.kind)) {
      throw new Error('raft entry does not hold an app log entry');
    }
    return decoded;
  },
};
