/**
 * A lying persister (issue 11, findings 1 and 7): a proxy around a member's held store that the node's
 * shard server answers from (NetworkOptions.wrapHeldStore), while its audit server keeps answering
 * from the real store, so the liar passes every audit. What it lies about is read on every request
 * (`lies()`), so a test turns a grid node into a liar, or back, at any moment.
 *
 *   shares: 'forged-header'  every share it holds is answered at once as a tiny forgery whose own
 *                            header claims k = 1 and an 8-byte pack (with a matching dataHash)
 *           'garbage-body'   the real header over garbage of the same length (dataHash recomputed)
 *   list:   'endless'        after the real entries, pages of made-up shares that never end (each
 *                            listing call yields a fresh batch above every key it gave before)
 *           'drip'           after the real entries, one made-up share every `dripMs`, for ever
 *           'claims'         every index 0..7 of each pack it holds a share of; the indexes it does
 *                            not hold are answered as garbage under a right-looking header
 *   listRecords: the same 'endless' / 'drip' with made-up record ids
 *   records: 'garbage'       getRecord answers random bytes of the record's length
 */
import { randomBytes } from 'node:crypto'
import { contentHash } from '../../src/crypto/index.js'
import { FormatError, NotFoundError } from '../../src/errors.js'
import { decodeShareHeader, encodeShareHeader, SHARE_HEADER_BYTES } from '../../src/format/share.js'
import { asPackId } from '../../src/ids.js'
import type { AbortOptions, ShareRef, ShareStore } from '../../src/store/index.js'
import { concatBytes, toHex } from '../../src/util/bytes.js'

export interface Lies {
  shares?: 'forged-header' | 'garbage-body'
  list?: 'endless' | 'drip' | 'claims'
  listRecords?: 'endless' | 'drip'
  records?: 'garbage'
  /** @default 2000 */
  dripMs?: number
}

/** Entries per made-up batch of an endless listing: more than one page holds (shard MAX_LIST_LIMIT). */
const ENDLESS_BATCH = 10_001
const CLAIMED_INDEXES = 8

/** A 32-byte id above every real (random) one: 24 bytes of 0xff, the batch, the entry. */
function madeUpId (batch: number, i: number): Uint8Array {
  const id = new Uint8Array(32).fill(0xff)
  const v = new DataView(id.buffer)
  v.setUint32(24, batch)
  v.setUint32(28, i)
  return id
}

async function sleep (ms: number, signals: AbortSignal[]): Promise<void> {
  const signal = AbortSignal.any(signals)
  signal.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve() }, ms)
    t.unref()
    const onAbort = (): void => { clearTimeout(t); reject(signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/**
 * `store` as a liar answers from it. `stopped` ends the lies that never end by themselves (a drip) when
 * the test's grid stops.
 */
export function lyingStore (store: ShareStore, lies: () => Lies, stopped: AbortSignal): ShareStore {
  let batch = 0
  /** forged answers per share, so that a share read in parts is read from one forgery */
  const forged = new Map<string, Uint8Array>()
  const keyOf = (ref: ShareRef): string => `${toHex(ref.pack)}/${ref.index}`

  /** The bytes served for `ref` (throws NotFoundError as the real store does for a share neither held nor claimed). */
  async function served (ref: ShareRef, options?: AbortOptions): Promise<Uint8Array> {
    const l = lies()
    const held = await store.has(ref, options)
    if (!held) {
      if (l.list !== 'claims') return await store.get(ref, options)
      // a claimed share: the header of a share of the same pack it does hold, over garbage
      for (let i = 0; i < CLAIMED_INDEXES; i++) {
        if (i === ref.index || !await store.has({ pack: ref.pack, index: i }, options)) continue
        const known = forged.get(keyOf(ref))
        if (known !== undefined) return known
        const real = await store.get({ pack: ref.pack, index: i }, options)
        const data = randomBytes(real.byteLength - SHARE_HEADER_BYTES)
        const out = concatBytes([encodeShareHeader({ ...decodeShareHeader(real), index: ref.index, dataHash: contentHash(data) }), data])
        forged.set(keyOf(ref), out)
        return out
      }
      return await store.get(ref, options)
    }
    if (l.shares === undefined) return await store.get(ref, options)
    const key = `${l.shares} ${keyOf(ref)}`
    const known = forged.get(key)
    if (known !== undefined) return known
    const real = await store.get(ref, options)
    let out: Uint8Array
    if (l.shares === 'forged-header') {
      const data = randomBytes(8)
      out = concatBytes([encodeShareHeader({ k: 1, m: Math.max(1, ref.index), index: ref.index, packLength: 8, packId: asPackId(ref.pack), dataHash: contentHash(data) }), data])
    } else {
      const data = randomBytes(real.byteLength - SHARE_HEADER_BYTES)
      out = concatBytes([encodeShareHeader({ ...decodeShareHeader(real), dataHash: contentHash(data) }), data])
    }
    forged.set(key, out)
    return out
  }

  async function * madeUp<T> (mode: 'endless' | 'drip' | undefined, make: (batch: number, i: number) => T, options?: AbortOptions): AsyncGenerator<T> {
    const signals = [stopped, ...(options?.signal !== undefined ? [options.signal] : [])]
    const b = ++batch
    if (mode === 'endless') {
      for (let i = 0; i < ENDLESS_BATCH; i++) yield make(b, i)
    } else if (mode === 'drip') {
      for (let i = 0; ; i++) {
        await sleep(lies().dripMs ?? 2000, signals)
        yield make(b, i)
      }
    }
  }

  const lying: Partial<ShareStore> = {
    get: served,
    async getRange (ref, offset, length, options) {
      const bytes = await served(ref, options)
      if (offset + length > bytes.byteLength) throw new FormatError(`range [${offset}, ${offset + length}) lies beyond the share's ${bytes.byteLength} bytes`)
      return bytes.slice(offset, offset + length)
    },
    async size (ref, options) { return (await served(ref, options)).byteLength },
    async has (ref, options) {
      try { await served(ref, options); return true } catch (err: unknown) { if (err instanceof NotFoundError) return false; throw err }
    },
    async * list (options) {
      const l = lies()
      for await (const ref of store.list(options)) {
        yield ref
        if (l.list === 'claims') for (let i = 0; i < CLAIMED_INDEXES; i++) if (i !== ref.index) yield { pack: ref.pack, index: i }
      }
      if (l.list !== 'claims') yield * madeUp(l.list, (b, i) => ({ pack: asPackId(madeUpId(b, i)), index: 0 }), options)
    },
    async * listRecords (options) {
      yield * store.listRecords(options)
      yield * madeUp(lies().listRecords, madeUpId, options)
    },
    async getRecord (id, options) {
      const real = await store.getRecord(id, options)
      return lies().records === 'garbage' ? randomBytes(real.byteLength) : real
    }
  }
  return new Proxy(store, {
    get (target, prop, receiver) {
      if (typeof prop === 'string' && prop in lying) return lying[prop as keyof ShareStore]
      const v = Reflect.get(target, prop, receiver) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    }
  })
}
