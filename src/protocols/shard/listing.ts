/**
 * The shard server's listings (`list`, `listRecords`: docs/protocols/shard.md): stateless pages in
 * key order, so that a listing of any length costs the server O(limit) memory per request.
 */
import type { ResponseHeader } from '../framing.js'
import { compareBytes } from '../../util/bytes.js'

/**
 * One page of a listing: the `limit` smallest keys strictly after `after`, ascending, and whether
 * more exist. Stateless (the cursor is the last key returned), so it walks the whole listing per
 * page in O(n log limit) time and O(limit) memory.
 */
export async function listPage<T> (
  items: AsyncIterable<T>, keyOf: (item: T) => Uint8Array, after: Uint8Array | undefined, limit: number, signal?: AbortSignal
): Promise<{ header: ResponseHeader, body: Uint8Array }> {
  let best: Uint8Array[] = []
  const trim = (): void => { best.sort(compareBytes); best = best.slice(0, limit + 1) }
  for await (const item of items) {
    const key = keyOf(item)
    if (after !== undefined && compareBytes(key, after) <= 0) continue
    best.push(key)
    if (best.length >= 2 * (limit + 1)) { trim(); signal?.throwIfAborted() }
  }
  trim()
  const more = best.length > limit
  const page = best.slice(0, limit)
  const body = new Uint8Array(page.reduce((n, k) => n + k.byteLength, 0))
  let off = 0
  for (const k of page) { body.set(k, off); off += k.byteLength }
  return { header: { status: 'OK', more }, body }
}
