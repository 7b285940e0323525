/**
 * @packageDocumentation
 * The repository model: packs of encrypted blobs, the pack store seam (local disk now, erasure-coded
 * peers later), trees, signed snapshot records, index rebuild and integrity checks.
 */
export { Repository, type RepositoryComponents, type RepositoryInit, type RepositoryStats } from './repository.js'
export { SingleStorePackStore, type PackStore, type PackPlacement } from './pack-store.js'
export { PackReader } from './pack-reader.js'
export { saveSnapshot, listSnapshots, readGcHead, readHead, resolveSnapshot, openSnapshot, sealSnapshot, verifySnapshotEnvelope, type RecordSigner, type Snapshot, type SnapshotListing, type HeadListing } from './snapshots.js'
export { DEFAULT_GRACE_MS, gcView, recordForgotten, stillNeededCheck, syncCondemned, type GcSync } from './gc.js'
export { sealGcRecord, openGcRecord, type GcRecordRef } from './gc-records.js'
export { commitSnapshot, type CommitOptions } from './gc-commit.js'
export { rebuildIndex, type RebuildSummary } from './rebuild-index.js'
export { MAX_SOLE_CLAIM_FAILURES } from './distrust.js'
export { checkRepository, type CheckOptions, type CheckReport, type CheckProblem } from './check.js'
export { compressBlob, decompressBlob } from './compress.js'
export { headDoubt, prune, type PruneOptions, type PruneReport } from './prune.js'
export { applyRetention, isEmptyPolicy, parseDuration, formatDuration as formatRetentionDuration, type RetentionPolicy, type RetentionGroup, type RetentionDecision } from './retention.js'
export { ErasurePackStore, type PeerDirectory, type ErasurePackStoreInit } from './erasure-pack-store.js'
export { type ListBounds } from './bounded-list.js'
export { commitPlacedPacks, repairPack, releaseShares, RefusalBackoff, replaceShares, type GroupPackStore, type StillNeededCheck } from './group-repair.js'
export { placeLocalPacks, type LocalPacksResult } from './local-packs.js'
export { encodeShares, recordCommitments } from './shares.js'
export { PlacementTally, describePlacement, sumTransferCounts, type PlacementSummary, type TransferCounts } from './placement-tally.js'
