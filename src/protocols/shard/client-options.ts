/**
 * What a RemoteShareStore is made with, and the argument checks and small helpers of client.ts
 * (split from it to keep one file to one job).
 */
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { FormatError } from '../../errors.js'
import { ID_BYTES } from '../../ids.js'
import type { ShareRef } from '../../store/index.js'
import type { TokenBucket } from '../../util/token-bucket.js'
import { shown } from '../../util/text.js'
import type { ResponseHeader } from '../framing.js'
import type { RetryClock, RetryPolicy } from '../retry.js'
import { REPLACE_REASON } from './constants.js'
import type { DeleteAuth } from './wire.js'

export interface RemoteShareStoreInit {
  node: Libp2p
  /** the persister */
  peer: PeerId
  /** where to reach it, added to the peer store before the first dial */
  addrs?: readonly Multiaddr[]
  /** the owner of the namespace: the user id (64 hex, the Ed25519 user public key) of this device's person */
  ownerUserId: string
  /**
   * base64 Ed25519 signature of `message` by the owner's USER key (not the device key): a delete, or
   * a replace of a holder's other bytes (shard.md §7.3). Throws on a device without the user key (a
   * write-only machine): its deletes and replaces are then not sent.
   */
  signDelete: (message: Uint8Array) => string
  /** deadline of one exchange. @default 60000 */
  timeoutMs?: number
  /** largest response body accepted (a share, a record, a list page). @default 32 MiB */
  maxShareBytes?: number
  /** requests in flight at once. @default 16 */
  maxConcurrent?: number
  /** entries asked for per list page. @default 10000 */
  listPageSize?: number
  /** clock for delete timestamps (ms since the epoch). @default Date.now */
  now?: () => number
  /**
   * How transient failures (reset, closed connection, early EOF, a timed-out attempt) are retried:
   * see protocols/retry.ts. An attempt's deadline is `timeoutMs`, cut to what is left of the budget.
   * @default DEFAULT_RETRY_POLICY (6 attempts, 100 ms doubling to 4 s with jitter, 120 s in all, 2 timeouts, 3 unreachable)
   */
  retry?: Partial<RetryPolicy>
  /** the retry policy's clock (tests pass a virtual one). @default SYSTEM_CLOCK */
  clock?: RetryClock
  /**
   * shares larger than this are put and read in parts, the first of this size; later parts grow
   * while exchanges succeed at the first try, up to `maxPartBytes` (limiter.ts PartSize).
   * @default TRANSFER_PART_BYTES (256 KiB), MAX_TRANSFER_PART_BYTES (1 MiB)
   */
  partBytes?: number
  maxPartBytes?: number
  /** byte-rate limits shared by every store of this node (`--limit-upload`, `--limit-download`) */
  limits?: { upload?: TokenBucket, download?: TokenBucket }
}

export function checkRef (ref: ShareRef): void {
  if (!(ref.pack instanceof Uint8Array) || ref.pack.byteLength !== ID_BYTES) throw new FormatError(`a share's pack id must be ${ID_BYTES} bytes`)
  if (!Number.isInteger(ref.index) || ref.index < 0 || ref.index > 255) throw new FormatError(`a share index must be an integer 0..255, got ${shown(ref.index)}`)
}

export function checkId (id: Uint8Array): void {
  if (!(id instanceof Uint8Array) || id.byteLength !== ID_BYTES) throw new FormatError(`a record id must be ${ID_BYTES} bytes`)
}

/** Signs one request (a fresh timestamp each time), or undefined for an unsigned one. */
export type Signer = (() => DeleteAuth) | undefined

/** Notes whether an answer refused a put for replacing held bytes unsigned (shard.md §7.3). */
export interface ReplaceSeen { refused: boolean }

export function noteReplace (h: ResponseHeader, seen: ReplaceSeen): void {
  if (h.status === 'REFUSED' && h.reason === REPLACE_REASON) seen.refused = true
}

/** A view that owns its whole buffer, so a returned share never pins or exposes other frames. */
export function owned (body: Uint8Array): Uint8Array {
  return body.byteOffset === 0 && body.byteLength === body.buffer.byteLength ? body : body.slice()
}
