// The transport of a group whose only member is this node (`lockstep dev`): there is nobody to
// talk to, so anything that tries is a bug in the host.
import type { GroupTransport } from './types.js';
import { GroupInvariantError } from './errors.js';

export const noTransport: GroupTransport = {
  send: (messages) => {
    if (messages.length > 0) throw new GroupInvariantError(`a one-voter group sent ${messages.length} message(s) to ${messages[0]?.to ?? '?'}`);
  },
  readIndex: () => Promise.reject(new GroupInvariantError('a one-voter group asked another node for a read index')),
  sendSnapshot: () => Promise.reject(new GroupInvariantError('a one-voter group sent a snapshot')),
};
