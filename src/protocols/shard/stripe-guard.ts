/**
 * A put over a share the persister holds with other bytes is sent again signed (a replace, shard.md
 * §7.3): right for a damaged copy, wrong for a share of **another stripe** of the same pack. Shares
 * of one pack with the same (k, m) are byte-identical wherever they are made, so other bytes under a
 * valid header of another (k, m) are not damage: some placement still records them (another device
 * of this person that placed or repaired the pack with the stripe it knew, or this device's own
 * older stripe whose release is queued), and replacing them would break that stripe. Such a put
 * fails with OtherStripeError instead: nothing was stored, and the share goes to another holder (docs/protocols/shard.md §7.3, docs/placement-and-repair.md §4 step 6).
 */
import { FormatError, NotFoundError, OtherStripeError, errorMessage } from '../../errors.js'
import { SHARE_HEADER_BYTES, decodeShareHeader, type ShareHeader } from '../../format/share.js'
import type { AbortOptions, ShareRef } from '../../store/index.js'
import { toHex } from '../../util/bytes.js'

/** Decodes a share header; undefined for bytes that are not one (a damaged copy, or not a share at all). */
function headerOf (bytes: Uint8Array): ShareHeader | undefined {
  if (bytes.byteLength < SHARE_HEADER_BYTES) return undefined
  try {
    return decodeShareHeader(bytes)
  } catch (err: unknown) {
    if (err instanceof FormatError) return undefined
    throw err
  }
}

/**
 * Throws OtherStripeError when the held share (its first SHARE_HEADER_BYTES, read by `readHeld`) is a
 * share of the same pack and index with another (k, m) than `incoming`'s header. A held copy that
 * cannot be read or is not a valid header is taken as damaged: the caller replaces it.
 */
export async function refuseOtherStripe (
  ref: ShareRef, incoming: Uint8Array, readHeld: (options?: AbortOptions) => Promise<Uint8Array>, where: string,
  log: (formatter: string, ...args: unknown[]) => void, options?: AbortOptions
): Promise<void> {
  const ours = headerOf(incoming)
  if (ours === undefined) return
  let held: ShareHeader | undefined
  try {
    held = headerOf(await readHeld(options))
  } catch (err: unknown) {
    // only a copy the persister cannot serve as a share (gone, or shorter than a header) is damage;
    // a timeout or a broken stream says nothing about the copy: the put fails, to be tried again
    if (!(err instanceof NotFoundError) && !(err instanceof FormatError)) throw err
    log('%s: its copy of share %d of pack %s cannot be read (%s): replaced as a damaged copy', where, ref.index, toHex(ref.pack).slice(0, 16), errorMessage(err))
    return
  }
  if (held === undefined || held.index !== ref.index || toHex(held.packId) !== toHex(ref.pack)) return
  if (held.k === ours.k && held.m === ours.m) return
  throw new OtherStripeError(`${where} holds share ${ref.index} of pack ${toHex(ref.pack).slice(0, 16)} of a ${held.k}+${held.m} stripe, not of this ${ours.k}+${ours.m} one: ` +
    'another device of yours (or an earlier placement) still counts on it, so it is not replaced; the share goes to another friend')
}
