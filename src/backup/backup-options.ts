/**
 * What a backup is asked (BackupOptions), what it reports while it runs (BackupProgress, ItemError)
 * and what it answers (BackupSummary): the archiver's interface, apart from its work (archiver.ts).
 */
import type { SnapshotId, TreeId } from '../ids.js'
import type { CommitOptions } from '../repo/index.js'

export interface ItemError { path: string, error: string, code: string }

export interface BackupProgress {
  filesDone: number
  dirsDone: number
  bytesDone: number
  /** total bytes found by the concurrent scan so far, and whether the scan has finished */
  bytesTotal: number
  filesTotal: number
  scanDone: boolean
  currentPath: string
}

export interface BackupOptions {
  paths: string[]
  excludes?: string[]
  tags?: string[]
  host?: string
  signal?: AbortSignal
  /** program name and version recorded in the snapshot */
  program?: string
  onItemError?: (err: ItemError) => void
  onProgress?: (p: BackupProgress) => void
  /** times a file that changes while read is read again before it is recorded as changed. @default 2 */
  changedFileRetries?: number
  /** clock, for tests @default Date.now-based ns */
  now?: () => bigint
  /** the garbage collection's last look before the snapshot is written (docs/gc.md §6) */
  commit?: CommitOptions
  /**
   * An incremental run (continuous mode): the tree of an earlier snapshot of the same paths and the
   * absolute paths created, changed or removed since (a watcher's events). Directories with no
   * changed path at or below them are taken from that tree without being listed.
   */
  base?: { tree: TreeId, changed: Iterable<string> }
}

export interface BackupSummary {
  snapshotId: SnapshotId
  tree: TreeId
  filesNew: number
  filesChanged: number
  filesUnchanged: number
  dirs: number
  others: number
  bytesRead: number
  /** bytes of files backed up (apparent size) */
  bytesProcessed: number
  /** bytes added to the store (compressed, encrypted packs) */
  bytesAdded: number
  rawBytesAdded: number
  blobsAdded: number
  changedDuringBackup: string[]
  errors: ItemError[]
  durationMs: number
  /** directories taken from the base snapshot without being listed (incremental runs) */
  dirsReused: number
}
