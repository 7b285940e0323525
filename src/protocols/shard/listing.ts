/**
 * The shard server's listings (`list`, `listRecords`: docs/protocols/shard.md): stateless pages in
 * key order, so that a listing of any length costs the server O(limit) memory per request.
 */
import type { ResponseHeader } from '../framing.js'
import { compareBytes } from '../../util/bytes.js'

/**
 * One page of a listing: the `limit` smallest keys strictly after `after`, ascending, and whether
 * more exist. Stateless (the cursor is the last key returned), so it walks the listing per page in
 * O(n log limit) time and O(limit) memory; `byFirstByte` (items come grouped by their key's first
 * byte, ascending, from the cursor's on) lets it stop after the group that filled the page.
 */
export async function listPage<T> (
  items: AsyncIterable<T>, keyOf: (item: T) => Uint8Array, after: Uint8Array | undefined, limit: number, signal?: AbortSignal,
  byFirstByte = false
): Promise<{ header: ResponseHeader, body: Uint8Array }> {
  let best: Uint8Array[] = []
  const trim = (): void => { best.sort(compareBytes); best = best.slice(0, limit + 1) }
  /** with items grouped by their key's first byte, ascending: the group that filled the page */
  let fullAt: number | undefined
  for await (const item of items) {
    const key = keyOf(item)
    // every key of a later group is larger than all of this one's: the page cannot change any more
    if (fullAt !== undefined && (key[0] as number) > fullAt) break
    if (after !== undefined && compareBytes(key, after) <= 0) continue
    best.push(key)
    if (best.length >= 2 * (limit + 1)) { trim(); signal?.throwIfAborted() }
    if (byFirstByte && fullAt === undefined && best.length >= limit + 1) fullAt = key[0] as number
  }
  trim()
  const more = best.length > limit
  const page = best.slice(0, limit)
  const body = new Uint8Array(page.reduce((n, k) => n + k.byteLength, 0))
  let off = 0
  for (const k of page) { body.set(k, off); off += k.byteLength }
  return { header: { status: 'OK', more }, body }
}
