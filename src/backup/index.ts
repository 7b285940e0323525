/**
 * @packageDocumentation
 * Files on disk to snapshots and back: the archiver (backup), the restorer, and read-only browsing
 * (ls, find, diff).
 */
export { Archiver, joinPath, type ArchiverComponents, type BackupOptions, type BackupProgress, type BackupSummary, type ItemError } from './archiver.js'
export { Restorer, type RestoreOptions, type RestoreProgress, type RestoreSummary } from './restorer.js'
export { walkTree, findPaths, diffTrees, type WalkEntry, type FindHit, type DiffEntry, type DiffKind } from './browse.js'
export { nativeAvailable } from './fsx.js'
