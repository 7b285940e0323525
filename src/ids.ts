/**
 * Content addresses. Every id is 32 bytes; in APIs they are branded so a PackId cannot be passed
 * where a ChunkId is expected. Hex appears only at the edges (file names, CLI, JSON).
 */
import { FormatError } from './errors.js'
import { fromHex, toHex } from './util/bytes.js'

declare const brand: unique symbol
type Id<B extends string> = Uint8Array & { readonly [brand]: B }

/** Keyed BLAKE3 of a chunk's plaintext (keyed so ids reveal nothing about content). */
export type ChunkId = Id<'ChunkId'>
/** Keyed BLAKE3 of a tree's plaintext encoding; trees are blobs like chunks. */
export type TreeId = Id<'TreeId'>
/** Unkeyed BLAKE3 of a pack's bytes (ciphertext): anyone holding the pack can verify it. */
export type PackId = Id<'PackId'>
/** Unkeyed BLAKE3 of a snapshot record's signed envelope. */
export type SnapshotId = Id<'SnapshotId'>
/** Any blob id (chunk or tree). */
export type BlobId = ChunkId | TreeId

export const ID_BYTES = 32

function asId<B extends string> (bytes: Uint8Array, kind: string): Id<B> {
  if (bytes.byteLength !== ID_BYTES) throw new FormatError(`${kind} must be ${ID_BYTES} bytes, got ${bytes.byteLength}`)
  return bytes as Id<B>
}

export const asChunkId = (b: Uint8Array): ChunkId => asId<'ChunkId'>(b, 'chunk id')
export const asTreeId = (b: Uint8Array): TreeId => asId<'TreeId'>(b, 'tree id')
export const asPackId = (b: Uint8Array): PackId => asId<'PackId'>(b, 'pack id')
export const asSnapshotId = (b: Uint8Array): SnapshotId => asId<'SnapshotId'>(b, 'snapshot id')

export function formatId (id: Uint8Array): string { return toHex(id) }
export function parseId (hex: string): Uint8Array {
  if (hex.length !== ID_BYTES * 2) throw new FormatError(`an id is ${ID_BYTES * 2} hex characters, got ${hex.length}`)
  return fromHex(hex)
}
/** 8 hex characters, like restic's short ids. */
export function shortId (id: Uint8Array): string { return toHex(id.subarray(0, 4)) }
