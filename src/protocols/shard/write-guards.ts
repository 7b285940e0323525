/**
 * The checks a persister makes before a delete or a replace of held bytes (shard.md §7): the owner's
 * user-key signature over a fresh timestamp, the group's retention age, and write-only devices.
 * Split from server.ts, which runs the requests; these only answer "may it go on".
 */
import type { Logger } from '@libp2p/interface'
import { NotFoundError } from '../../errors.js'
import { contentHash } from '../../crypto/hash.js'
import { equalBytes } from '../../util/bytes.js'
import type { ShareRef, ShareStore } from '../../store/index.js'
import type { ResponseHeader } from '../framing.js'
import { DELETE_MAX_SKEW_MS, FULL_REASON, REPLACE_REASON } from './constants.js'
import { deleteMessage, replaceMessage, shortError, userKeyOf } from './wire.js'
import type { DeleteAuth } from './wire.js'

export type Reply = { header: ResponseHeader, body?: Uint8Array }

/** Who is asking, as the server's `authorize` tells it. */
export interface Device { userId: string, writeOnly?: boolean }

/** The reason a write-only device gets for a delete or an overwrite (shard.md §7.2). */
export const WRITE_ONLY_REFUSAL = 'this device is certified write-only: it may add shares and records, never delete or replace them'

/** What a replace signature names: a share (pack id and index) or a record. */
export type Target = { kind: 'share', id: Uint8Array, index: number } | { kind: 'record', id: Uint8Array }

/** Why a write is refused; `full`: for want of room (disk full, quota used up), sent as `"reason":"FULL"`. */
export type Refusal = string | { error: string, full: true }

export function refused (why: Refusal): Reply {
  if (typeof why === 'string') return { header: { status: 'REFUSED', error: shortError(why) } }
  return { header: { status: 'REFUSED', reason: FULL_REASON, error: shortError(why.error) } }
}

export interface WriteGuardsInit {
  /** True iff `signatureB64` is the owner's user-key Ed25519 signature of `message`. */
  verifyDeleteSignature: (ownerUserId: string, message: Uint8Array, signatureB64: string) => boolean
  /** The group's retention age in ms (a share younger than it is not deleted nor replaced). */
  minShareAgeMs?: () => number
  /** ms since the epoch */
  now: () => number
  /** this persister's peer id multihash: signatures name the persister they are for */
  persister: Uint8Array
  log: Logger
}

export function writeGuards (init: WriteGuardsInit): {
  checkDelete: (userId: string, target: Target, auth: DeleteAuth) => string | undefined
  unsignedReplace: (userId: string, target: Target, data: Uint8Array | undefined, auth: DeleteAuth | undefined) => Reply | undefined
  replaceRefusal: (device: Device, store: ShareStore, ref: ShareRef, data: Uint8Array | undefined, auth: DeleteAuth | undefined) => Promise<Reply | undefined>
  heldOther: (store: ShareStore, ref: ShareRef, held: number, data: Uint8Array, signal: AbortSignal) => Promise<boolean>
  tooYoung: (store: ShareStore, ref: ShareRef) => Promise<Reply | undefined>
  currentSize: (store: ShareStore, ref: ShareRef) => Promise<number>
} {
  const { now, persister, log } = init

  /** REFUSED reason for a delete whose timestamp or signature does not hold, else undefined. */
  function checkDelete (userId: string, target: { kind: 'share' | 'record', id: Uint8Array, index?: number }, auth: DeleteAuth): string | undefined {
    if (Math.abs(now() - auth.ts) > DELETE_MAX_SKEW_MS) return `the delete's timestamp is more than ${DELETE_MAX_SKEW_MS / 60_000} minutes from this persister's clock`
    const message = deleteMessage({ ...target, owner: userKeyOf(userId), persister }, auth.ts)
    return verified(userId, message, auth.sig) ? undefined : 'the delete is not signed by the owner\'s user key'
  }

  function verified (userId: string, message: Uint8Array, sig: string): boolean {
    try {
      return init.verifyDeleteSignature(userId, message, sig)
    } catch (err: unknown) {
      log('verifying a signature of %s failed - %e', userId, err)
      return false
    }
  }

  /**
   * The REFUSED reply for a put that would replace held bytes with `data` (shard.md §7.3) without a
   * fresh replace signature of the owner's user key over exactly these bytes, else undefined. A
   * stolen device key can add shares but no longer overwrite old ones (issue 11, finding 3).
   */
  function unsignedReplace (userId: string, target: Target, data: Uint8Array | undefined, auth: DeleteAuth | undefined): Reply | undefined {
    const what = target.kind === 'share' ? 'share' : 'record'
    const refuse = (why: string): Reply => ({ header: { status: 'REFUSED', reason: REPLACE_REASON, error: shortError(why) } })
    if (auth === undefined) return refuse(`this persister holds the ${what} with other bytes: replacing them needs the owner's user-key signature`)
    if (Math.abs(now() - auth.ts) > DELETE_MAX_SKEW_MS) return refuse(`the replace's timestamp is more than ${DELETE_MAX_SKEW_MS / 60_000} minutes from this persister's clock`)
    // a part of an upload: the signature is checked over the whole share when its last part arrives
    if (data === undefined) return undefined
    const message = replaceMessage({ ...target, owner: userKeyOf(userId), persister }, contentHash(data), auth.ts)
    return verified(userId, message, auth.sig) ? undefined : refuse(`the replace of this ${what} is not signed by the owner's user key over these bytes`)
  }

  /**
   * Why a put of other bytes over a held share may not go on: a write-only device (§7.2), a share
   * younger than the retention policy (§7.1), or no valid replace signature (§7.3). `data` is the
   * whole new share, or undefined for an unfinished upload (checked again when it completes).
   */
  async function replaceRefusal (device: Device, store: ShareStore, ref: ShareRef, data: Uint8Array | undefined, auth: DeleteAuth | undefined): Promise<Reply | undefined> {
    if (device.writeOnly === true) return refused(WRITE_ONLY_REFUSAL)
    // replacing a young share is a delete the retention policy forbids, whoever signs it
    const young = await tooYoung(store, ref)
    if (young !== undefined) return young
    return unsignedReplace(device.userId, { kind: 'share', id: ref.pack, index: ref.index }, data, auth)
  }

  /** True when `ref` is held with bytes other than `data` (sizes compared first, bytes only when equal). */
  async function heldOther (store: ShareStore, ref: ShareRef, held: number, data: Uint8Array, signal: AbortSignal): Promise<boolean> {
    if (held === 0) return false
    return held !== data.byteLength || !equalBytes(await store.get(ref, { signal }), data)
  }

  /** The REFUSED reply for deleting a share younger than the retention policy, else undefined. */
  async function tooYoung (store: ShareStore, ref: ShareRef): Promise<Reply | undefined> {
    const minAge = init.minShareAgeMs?.() ?? 0
    if (minAge <= 0 || store.storedAt === undefined) return undefined
    let at: number
    try {
      at = await store.storedAt(ref)
    } catch (err: unknown) {
      if (err instanceof NotFoundError) return undefined // deleting an absent share succeeds
      throw err
    }
    if (now() - at >= minAge) return undefined
    const notBefore = Math.ceil(at + minAge)
    const days = Math.round(minAge / 86_400_000 * 10) / 10
    const error = `the group's retention policy keeps shares ${days} days: this one may be deleted from ${new Date(notBefore).toISOString()}`
    return { header: { status: 'REFUSED', reason: 'RETENTION', notBefore, error } }
  }

  async function currentSize (store: ShareStore, ref: ShareRef): Promise<number> {
    try {
      return await store.size(ref)
    } catch (err: unknown) {
      if (err instanceof NotFoundError) return 0
      throw err
    }
  }

  return { checkDelete, unsignedReplace, replaceRefusal, heldOther, tooYoung, currentSize }
}
