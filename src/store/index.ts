/**
 * @packageDocumentation
 *
 * Where shares and head records live. {@link ShareStore} is the one interface that a local directory
 * ({@link LocalShareStore}), an in-memory test double ({@link MemoryShareStore}) and a remote
 * peer implement. {@link writeFileAtomic} and {@link AtomicFile} are the crash-safe write primitives
 * everything on disk goes through. Layout and guarantees: docs/format/share-store.md.
 */
export type { AbortOptions, ListOptions, ShareRef, ShareStore, ShareWriter, StoreUsage } from './share-store.js'
export { MAX_SHARE_INDEX, checkRange, checkRecordId, checkShareRef, shareRefName } from './share-store.js'
export { LocalShareStore, LOCAL_STORE_VERSION } from './local-share-store.js'
export { MemoryShareStore } from './memory-share-store.js'
export { AtomicFile, WRITEV_MAX_PARTS, writeFileAtomic, removeTempFiles, TEMP_PREFIX, isNoSpace } from './atomic.js'
export { DISK_RESERVE_FRACTION, DISK_RESERVE_MAX_BYTES, DISK_RESERVE_MIN_BYTES, RECORD_RESERVE_SHARE, diskReserve, diskRoom, withRoom, type DiskRoom } from './disk-room.js'
export { IndexDb, INDEX_VERSION, type BlobLocation, type PackInfo, type FileCacheEntry } from './index-db.js'
export { acquireLock, type Lock, type LockInfo } from './lock.js'
export { AuditDb, newPeerRecord, type ShareAudit, type ShareState, type PeerRecord } from './audit-db.js'
export { ProofCache } from './proof-cache.js'
export { GC_NOTE_REVIVED, GcDb, type GcNote, type GcNoteState } from './gc-db.js'
