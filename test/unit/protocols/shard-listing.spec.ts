/**
 * A listing page from a store that lists by the first byte of the pack id (a persister's held store)
 * gives the same pages as a full walk, and stops after the group that filled the page: a page costs
 * the persister what it returns, not the member's whole namespace (at two million shares a full walk
 * per page took seconds).
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { listPage } from '../../../src/protocols/shard/listing.js'
import { compareBytes } from '../../../src/util/bytes.js'

/** `n` distinct 33-byte keys (pack id || index), spread over every first byte */
function keys (n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => Uint8Array.of(...createHash('sha256').update(`key ${i}`).digest(), i % 256))
}

/** the keys grouped by first byte, ascending, from `from` on (as LocalShareStore lists), counting what is read */
function grouped (byGroup: Uint8Array[], from: number, read: { n: number }): AsyncIterable<Uint8Array> {
  const start = byGroup.findIndex(k => (k[0] as number) >= from)
  return (async function * () { for (let i = start < 0 ? byGroup.length : start; i < byGroup.length; i++) { read.n++; yield byGroup[i] as Uint8Array } })()
}

describe('protocols/shard listing: pages from a store listed by first byte', () => {
  it('gives every key once, in order, at any page size, and reads about one page per page', async () => {
    const all = keys(3000)
    const sorted = [...all].sort(compareBytes)
    // grouped by first byte, in no order within a group (a directory's order)
    const byGroup = [...all].sort((a, b) => (a[0] as number) - (b[0] as number))
    for (const limit of [1, 7, 100, 1000]) {
      const seen: Uint8Array[] = []
      let after: Uint8Array | undefined
      let reads = 0
      for (let page = 0; page < 10_000; page++) {
        const read = { n: 0 }
        const { header, body } = await listPage(grouped(byGroup, after?.[0] ?? 0, read), k => k, after, limit, undefined, true)
        reads += read.n
        for (let o = 0; o < body.byteLength; o += 33) seen.push(body.subarray(o, o + 33))
        if (header.more !== true) break
        after = seen.at(-1)
      }
      assert.deepEqual(seen.map(k => Buffer.from(k).toString('hex')), sorted.map(k => Buffer.from(k).toString('hex')), `limit ${limit}`)
      // a full walk per page would read pages × 3000 keys; this reads about the page and a group or two
      const pages = Math.ceil(all.length / limit)
      assert.ok(reads < pages * (2 * limit + 3 * 3000 / 256 + 2), `limit ${limit}: ${reads} keys read for ${pages} pages`)
    }
  })
})
