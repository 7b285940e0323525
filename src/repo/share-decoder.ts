/**
 * Reading a pack back from its holders' shares (docs/network.md §9.1). Every holder is asked at once
 * (a slow holder costs nothing while k others answer: the read is hedged by design). A share's header
 * is the holder's word, not a fact: answers are grouped by the scheme their headers state
 * (k, m, packLength), and any group that reaches its k is decoded; only a pack whose BLAKE3 is the pack
 * id is accepted. So a holder that answers at once with a forged header (k = 1, a tiny packLength)
 * cannot fix the scheme for the others and block the read: its group fails to decode, the honest one
 * succeeds. Holders whose share does not belong to the decoded pack are reported (`bad`), so that the
 * caller can count them as failing (repair then replaces their share).
 */
import { CorruptDataError, NotEnoughSharesError, errorMessage } from '../errors.js'
import { contentHash } from '../crypto/index.js'
import { decodeShareHeader, SHARE_HEADER_BYTES } from '../format/share.js'
import { decodeShards } from '../erasure/index.js'
import type { PackId } from '../ids.js'
import type { AbortOptions, ShareStore } from '../store/index.js'
import { equalBytes, toHex } from '../util/bytes.js'
import { encodeShares } from './shares.js'

/** The scheme of a pack: what the index recorded when it was placed, or what a verified decode found. */
export interface PackScheme { k: number, m: number, packLength: number }

export interface DecodedPack extends PackScheme {
  pack: Uint8Array
  /** holders whose answer does not belong to the pack: a forged or damaged share, another scheme */
  bad: Array<{ index: number, holder: string, reason: string }>
}

/** Decode attempts (k-subsets tried) per group at most: a bound on the work forged shares can cause. */
const MAX_ATTEMPTS_PER_GROUP = 64

interface Group extends PackScheme { shards: Map<number, Uint8Array>, attempts: number, failed: boolean }

/**
 * Fetches the shares of `id` from `holders` (share index → holder name) and decodes the pack. With
 * `expected`, a group with that scheme is tried first, and only once it cannot decode are the others
 * (the index may be older than the placement). Throws NotEnoughSharesError when no group reaches its
 * k, CorruptDataError when every group that did fails to decode to the pack.
 */
export async function fetchAndDecode (
  id: PackId, holders: ReadonlyMap<number, string>, storeOf: (holder: string) => ShareStore,
  expected: PackScheme | undefined, options?: AbortOptions
): Promise<DecodedPack> {
  const errors: string[] = []
  const groups = new Map<string, Group>()
  const sources = new Map<number, string>()
  const stop = new AbortController()
  const signal = options?.signal !== undefined ? AbortSignal.any([options.signal, stop.signal]) : stop.signal
  const keyOf = (s: PackScheme): string => `${s.k}+${s.m}/${s.packLength}`
  const expectedKey = expected !== undefined ? keyOf(expected) : undefined
  let found: { pack: Uint8Array, group: Group } | undefined
  let pending = holders.size
  // decode attempts run one at a time, in arrival order
  let decoding: Promise<void> = Promise.resolve()

  const tryDecode = async (key: string, g: Group, subset: number[]): Promise<void> => {
    g.attempts++
    try {
      const pack = await decodeShards(new Map(subset.map(i => [i, g.shards.get(i) as Uint8Array])), { k: g.k, m: g.m }, g.packLength)
      if (equalBytes(contentHash(pack), id)) { found = { pack, group: g }; return }
      errors.push(`shares ${subset.join(',')} as ${key} decode to another pack`)
    } catch (err: unknown) {
      errors.push(`shares ${subset.join(',')} as ${key}: ${errorMessage(err)}`)
    }
    g.failed = true
  }
  /** Tries the k-subsets that include the share just arrived (together they cover every subset). */
  const onArrival = async (key: string, g: Group, newest: number): Promise<void> => {
    if (found !== undefined || g.shards.size < g.k) return
    // another scheme than the index's waits until that one has had every answer
    if (expectedKey !== undefined && key !== expectedKey) return
    const others = [...g.shards.keys()].filter(i => i !== newest).sort((a, b) => a - b)
    for (const subset of kSubsets(others, g.k - 1, [newest])) {
      if (found !== undefined || g.attempts >= MAX_ATTEMPTS_PER_GROUP) return
      await tryDecode(key, g, subset)
    }
  }

  await new Promise<void>((resolve) => {
    if (pending === 0) { resolve(); return }
    const settle = (): void => { if (--pending === 0) void decoding.then(() => resolve()) }
    for (const [index, holder] of holders) {
      storeOf(holder).get({ pack: id, index }, { signal }).then(share => {
        const h = decodeShareHeader(share)
        const shard = share.subarray(SHARE_HEADER_BYTES)
        if (!equalBytes(h.packId, id) || h.index !== index || !equalBytes(contentHash(shard), h.dataHash)) throw new CorruptDataError('share does not match its header')
        const scheme = { k: h.k, m: h.m, packLength: h.packLength }
        const key = keyOf(scheme)
        let g = groups.get(key)
        if (g === undefined) { g = { ...scheme, shards: new Map(), attempts: 0, failed: false }; groups.set(key, g) }
        g.shards.set(index, shard)
        sources.set(index, holder)
        const group = g
        // the first k that decode end the read: slower holders are not waited for
        decoding = decoding.then(async () => { await onArrival(key, group, index); if (found !== undefined) resolve() })
      }).catch((err: unknown) => { errors.push(`share ${index} from ${holder}: ${errorMessage(err)}`) }).finally(settle)
    }
  })
  await decoding
  // every holder answered and the index's scheme (if any) did not decode: the other groups' turn
  for (const [key, g] of groups) {
    if (found !== undefined) break
    if (key === expectedKey || g.shards.size < g.k) continue
    for (const subset of kSubsets([...g.shards.keys()].sort((a, b) => a - b), g.k, [])) {
      if (found !== undefined || g.attempts >= MAX_ATTEMPTS_PER_GROUP) break
      await tryDecode(key, g, subset)
    }
  }
  stop.abort()
  if (found === undefined) {
    const best = [...groups.values()].sort((a, b) => b.shards.size - a.shards.size)[0]
    if (best === undefined || best.shards.size < best.k) {
      const k = expected?.k ?? best?.k
      throw new NotEnoughSharesError(`pack ${toHex(id).slice(0, 16)}: ${best?.shards.size ?? 0} of the ${k ?? 'needed'} shares could be read (${holders.size} holders asked): ${errors.join('; ')}`)
    }
    throw new CorruptDataError(`pack ${toHex(id).slice(0, 16)}: no set of shares from its ${sources.size} answering holders decodes to the pack (forged or damaged shares): ${errors.join('; ')}`)
  }
  const { pack, group } = found
  const bad: DecodedPack['bad'] = []
  for (const [key, g] of groups) {
    if (g === group) continue
    for (const index of g.shards.keys()) bad.push({ index, holder: sources.get(index) as string, reason: `its share states scheme ${key}, the pack is ${group.k}+${group.m}/${group.packLength}` })
  }
  // a share of the right scheme that took part in a failed attempt may itself be forged: compare
  // every share that arrived with the one the pack encodes to (only then: it costs an encode)
  if (group.failed) {
    const expectedShares = await encodeShares(id, pack, group.k, group.m)
    for (const [index, shard] of group.shards) {
      const want = expectedShares[index]
      if (want === undefined || !equalBytes(want.subarray(SHARE_HEADER_BYTES), shard)) {
        bad.push({ index, holder: sources.get(index) as string, reason: 'its share does not belong to the pack (forged or damaged)' })
      }
    }
  }
  return { pack, k: group.k, m: group.m, packLength: group.packLength, bad }
}

/** Every k-element subset of `items`, each with `tail` appended, in lexicographic order (lazily). */
function * kSubsets<T> (items: readonly T[], k: number, tail: readonly T[], start = 0, prefix: T[] = []): Generator<T[]> {
  if (prefix.length === k) { yield [...prefix, ...tail]; return }
  for (let i = start; i <= items.length - (k - prefix.length); i++) yield * kSubsets(items, k, tail, i + 1, [...prefix, items[i] as T])
}
