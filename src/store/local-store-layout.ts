/**
 * The on-disk layout of a local share store (docs/format/share-store.md): its version file, where
 * shares and records live, their file names and modes. Used by {@link LocalShareStore}.
 */
import { readFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { StoreVersionError, errnoCode } from '../errors.js'
import { asPackId } from '../ids.js'
import { fromHex } from '../util/bytes.js'
import { writeFileAtomic } from './atomic.js'
import { MAX_SHARE_INDEX } from './share-store.js'
import type { ShareRef } from './share-store.js'

/** The layout version this code reads and writes. */
export const LOCAL_STORE_VERSION = 1
export const VERSION_FILE = 'VERSION'
export const SHARES_DIR = 'shares'
export const RECORDS_DIR = 'records'

/** Store contents are private to the user: encrypted, but their sizes and ids are still metadata. */
export const DIR_MODE = 0o700
export const FILE_MODE = 0o600

export const PREFIX_RE = /^[0-9a-f]{2}$/
export const SHARE_NAME_RE = /^([0-9a-f]{64})\.(0|[1-9][0-9]{0,2})$/
export const RECORD_NAME_RE = /^[0-9a-f]{64}$/

/** True if an fs error means "no such file" (including a path component that is not a directory). */
export function isMissing (err: unknown): boolean {
  const code = errnoCode(err)
  return code === 'ENOENT' || code === 'ENOTDIR'
}

/** Parses a file name inside `shares/<prefix>/`; undefined for anything that is not a share. */
export function parseShareFileName (prefix: string, name: string): ShareRef | undefined {
  const m = SHARE_NAME_RE.exec(name)
  if (m === null) return undefined
  const hex = m[1] as string
  const index = Number(m[2])
  if (index > MAX_SHARE_INDEX || !hex.startsWith(prefix)) return undefined
  return { pack: asPackId(fromHex(hex)), index }
}

export async function readDirSorted (dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort()
  } catch (err: unknown) {
    if (isMissing(err)) return []
    throw err
  }
}

export async function readOrCreateVersion (root: string): Promise<void> {
  const path = join(root, VERSION_FILE)
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err: unknown) {
    if (!isMissing(err)) throw err
    await writeFileAtomic(path, String(LOCAL_STORE_VERSION), { mode: 0o644 })
    return
  }
  const trimmed = text.replace(/^[ \t\r\n\f\v]+|[ \t\r\n\f\v]+$/g, '') // ASCII whitespace only
  if (trimmed !== String(LOCAL_STORE_VERSION)) {
    throw new StoreVersionError(
      `the share store in ${root} has version "${trimmed.slice(0, 20)}", but this p2pbak only knows version ` +
      `${LOCAL_STORE_VERSION}; upgrade p2pbak to use it`)
  }
}
