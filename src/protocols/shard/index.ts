/**
 * @packageDocumentation
 *
 * `/p2pbak/shard/1.0.0`: how a publisher keeps erasure-coded shares and snapshot records on a
 * persister. {@link shardServer} answers on the persister, acting only on the namespace of the
 * requesting device's person; {@link RemoteShareStore} is the publisher's {@link ShareStore} for one
 * persister, so the repository sees a friend's disk and its own through one interface.
 * Spec: docs/protocols/shard.md (framing: docs/protocols/framing.md).
 */
export { shardServer } from './server.js'
export type { Device, ShardServer, ShardServerInit } from './server.js'
export type { Refusal } from './write-guards.js'
export { WRITE_ONLY_REFUSAL } from './server.js'
export { RemoteShareStore } from './client.js'
export type { RemoteShareStoreInit } from './client.js'
export { deleteMessage, userKeyOf } from './wire.js'
export type { DeleteTarget, ShardOp, ShardRequestHeader } from './wire.js'
export {
  SHARD_PROTOCOL, SHARD_PROTOCOL_STREAMS, DEFAULT_MAX_SHARE_BYTES, DEFAULT_MAX_RECORD_BYTES, DEFAULT_TIMEOUT_MS, DELETE_MAX_SKEW_MS,
  DELETE_DOMAIN, MAX_LIST_LIMIT, MAX_HEADER_BYTES
} from './constants.js'
