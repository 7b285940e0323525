/**
 * Reading a pack back from its holders' shares (docs/network.md §9.1). Every holder is asked at once
 * (a slow holder costs nothing while k others answer: the read is hedged by design). A share's header
 * is the holder's word, not a fact: answers are grouped by the scheme their headers state
 * (k, m, packLength), and any group that reaches its k is decoded; only a pack whose BLAKE3 is the pack
 * id is accepted. So a holder that answers at once with a forged header (k = 1, a tiny packLength)
 * cannot fix the scheme for the others and block the read: its group fails to decode, the honest one
 * succeeds. Several holders may claim one share index (a listing during recovery is their word too):
 * each claim is asked, and differing answers for one index are alternatives the decoder tries.
 * Holders whose answer does not belong to the decoded pack are reported (`bad`), so that the caller
 * can count them as failing (repair then replaces their share).
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

/** Who is asked for which share: (share index, holder) pairs; one index may have several holders. */
export type HolderList = Iterable<readonly [number, string]>

export interface DecodedPack extends PackScheme {
  pack: Uint8Array
  /** for each share index used or confirmed, a holder whose share is the pack's */
  good: Map<number, string>
  /** holders whose answer does not belong to the pack: a forged or damaged share, another scheme */
  bad: Array<{ index: number, holder: string, reason: string }>
}

/** With a known scheme, the other holders are asked when the first k have not given the pack after this long. */
export const DEFAULT_HEDGE_MS = 2_000

/** Decode attempts per group at most: a bound on the work that forged shares can cause. */
const MAX_ATTEMPTS_PER_GROUP = 64

interface Answer { holder: string, shard: Uint8Array }
interface Group extends PackScheme { answers: Map<number, Answer[]>, attempts: number, failed: boolean }

/**
 * Fetches the shares of `id` from `holders` and decodes the pack. With `expected`, the group with that
 * scheme is decoded while holders still answer; the others only once every holder has answered and
 * that one could not decode (the index may be older than the placement). Throws NotEnoughSharesError
 * when no group reaches its k, CorruptDataError when every group that did fails to decode to the pack.
 */
export async function fetchAndDecode (
  id: PackId, holders: HolderList, storeOf: (holder: string) => ShareStore,
  expected: PackScheme | undefined, options?: AbortOptions & { hedgeMs?: number }
): Promise<DecodedPack> {
  const asked = uniquePairs(holders)
  const errors: string[] = []
  const groups = new Map<string, Group>()
  const stop = new AbortController()
  const signal = options?.signal !== undefined ? AbortSignal.any([options.signal, stop.signal]) : stop.signal
  const keyOf = (s: PackScheme): string => `${s.k}+${s.m}/${s.packLength}`
  const expectedKey = expected !== undefined ? keyOf(expected) : undefined
  let found: { pack: Uint8Array, group: Group, used: Map<number, Answer> } | undefined
  let pending = asked.length
  // decode attempts run one at a time, in arrival order
  let decoding: Promise<void> = Promise.resolve()

  const tryDecode = async (key: string, g: Group, choice: Map<number, Answer>): Promise<void> => {
    g.attempts++
    const label = [...choice.keys()].join(',')
    try {
      const pack = await decodeShards(new Map([...choice].map(([i, a]) => [i, a.shard])), { k: g.k, m: g.m }, g.packLength)
      if (equalBytes(contentHash(pack), id)) { found = { pack, group: g, used: choice }; return }
      errors.push(`shares ${label} as ${key} decode to another pack`)
    } catch (err: unknown) {
      errors.push(`shares ${label} as ${key}: ${errorMessage(err)}`)
    }
    g.failed = true
  }
  const tryAll = async (key: string, g: Group, choices: Iterable<Map<number, Answer>>): Promise<void> => {
    for (const choice of choices) {
      if (found !== undefined || g.attempts >= MAX_ATTEMPTS_PER_GROUP) return
      await tryDecode(key, g, choice)
    }
  }

  await new Promise<void>((resolve) => {
    if (pending === 0) { resolve(); return }
    // hedged reads: with a known scheme, ask k holders first (the data shards: decoding them is a
    // copy), and one more for each answer that fails or is not the pack's; after `hedgeMs` without a
    // pack, or a decode that failed, ask everyone left
    const queue = expected === undefined ? [...asked] : [...asked].sort((a, b) => a[0] - b[0])
    let hedge: NodeJS.Timeout | undefined
    const launch = (n: number): void => {
      for (let i = 0; i < n && queue.length > 0; i++) fetch(queue.shift() as [number, string])
      if (queue.length === 0 && hedge !== undefined) { clearTimeout(hedge); hedge = undefined }
    }
    const settle = (useful: boolean): void => {
      if (--pending === 0) { void decoding.then(() => resolve()); return }
      // an answer that failed, or is not of the scheme sought: one more holder takes its place
      if (!useful && found === undefined) launch(1)
    }
    const fetch = ([index, holder]: [number, string]): void => {
      let useful = false
      storeOf(holder).get({ pack: id, index }, { signal }).then(share => {
        const h = decodeShareHeader(share)
        const shard = share.subarray(SHARE_HEADER_BYTES)
        if (!equalBytes(h.packId, id) || h.index !== index || !equalBytes(contentHash(shard), h.dataHash)) throw new CorruptDataError('share does not match its header')
        const key = keyOf(h)
        let g = groups.get(key)
        if (g === undefined) { g = { k: h.k, m: h.m, packLength: h.packLength, answers: new Map(), attempts: 0, failed: false }; groups.set(key, g) }
        const answers = g.answers.get(index) ?? []
        g.answers.set(index, answers)
        // the same bytes from a second holder add nothing to try
        if (answers.some(a => equalBytes(a.shard, shard))) { answers.push({ holder, shard }); return }
        const answer = { holder, shard }
        answers.push(answer)
        useful = expectedKey === undefined || key === expectedKey
        const group = g
        decoding = decoding.then(async () => {
          // another scheme than the index's waits until that one has had every answer
          if (found !== undefined || group.answers.size < group.k || (expectedKey !== undefined && key !== expectedKey)) return
          // every choice with this answer and k - 1 other indexes: together they cover every choice
          await tryAll(key, group, choices(group, group.k, index, answer))
          // the first k that decode end the read: slower holders are not waited for
          if (found !== undefined) { if (hedge !== undefined) clearTimeout(hedge); resolve() } else launch(queue.length)
        })
      }).catch((err: unknown) => { errors.push(`share ${index} from ${holder}: ${errorMessage(err)}`) }).finally(() => { settle(useful) })
    }
    if (expected === undefined) {
      launch(queue.length)
    } else {
      launch(expected.k)
      if (queue.length > 0) hedge = setTimeout(() => { hedge = undefined; if (found === undefined) launch(queue.length) }, options?.hedgeMs ?? DEFAULT_HEDGE_MS)
    }
  })
  await decoding
  // every holder answered and the index's scheme (if any) did not decode: the other groups' turn
  for (const [key, g] of groups) {
    if (found !== undefined) break
    if (key === expectedKey || g.answers.size < g.k) continue
    await tryAll(key, g, choices(g, g.k))
  }
  stop.abort()
  if (found === undefined) {
    const best = [...groups.values()].sort((a, b) => b.answers.size - a.answers.size)[0]
    if (best === undefined || best.answers.size < best.k) {
      const k = expected?.k ?? best?.k
      throw new NotEnoughSharesError(`pack ${toHex(id).slice(0, 16)}: ${best?.answers.size ?? 0} of the ${k ?? 'needed'} shares could be read (${asked.length} holders asked): ${errors.join('; ')}`)
    }
    throw new CorruptDataError(`pack ${toHex(id).slice(0, 16)}: no set of shares from its answering holders decodes to the pack (forged or damaged shares): ${errors.join('; ')}`)
  }
  return await judge(id, found.pack, found.group, found.used, groups, keyOf)
}

/** Sorts every answer into good (its share is the pack's) and bad. */
async function judge (
  id: PackId, pack: Uint8Array, group: Group, used: Map<number, Answer>, groups: Map<string, Group>, keyOf: (s: PackScheme) => string
): Promise<DecodedPack> {
  const good = new Map<number, string>()
  const bad: DecodedPack['bad'] = []
  for (const [key, g] of groups) {
    if (g === group) continue
    for (const [index, answers] of g.answers) {
      for (const a of answers) bad.push({ index, holder: a.holder, reason: `its share states scheme ${key}, the pack is ${keyOf(group)}` })
    }
  }
  const alternatives = [...group.answers.values()].some(a => distinct(a).length > 1)
  if (!group.failed && !alternatives) {
    // every answer of the group took part in no failed attempt and none disagrees: all are the pack's
    for (const [index, answers] of group.answers) good.set(index, (answers[0] as Answer).holder)
  } else {
    // some answer may be forged: compare each with the share the pack encodes to (costs an encode)
    const want = await encodeShares(id, pack, group.k, group.m)
    for (const [index, answers] of group.answers) {
      const expected = want[index]?.subarray(SHARE_HEADER_BYTES)
      for (const a of answers) {
        if (expected !== undefined && equalBytes(expected, a.shard)) { if (!good.has(index)) good.set(index, a.holder) } else bad.push({ index, holder: a.holder, reason: 'its share does not belong to the pack (forged or damaged)' })
      }
    }
  }
  for (const [index, a] of used) if (!good.has(index)) good.set(index, a.holder)
  return { pack, k: group.k, m: group.m, packLength: group.packLength, good, bad }
}

/** One answer per distinct share bytes (several holders may give the same). */
function distinct (answers: readonly Answer[]): Answer[] {
  const out: Answer[] = []
  for (const a of answers) if (!out.some(o => equalBytes(o.shard, a.shard))) out.push(a)
  return out
}

function uniquePairs (holders: HolderList): Array<[number, string]> {
  const seen = new Set<string>()
  const out: Array<[number, string]> = []
  for (const [i, h] of holders) {
    const key = `${i}@${h}`
    if (!seen.has(key)) { seen.add(key); out.push([i, h]) }
  }
  return out
}

/**
 * Choices of k answers with distinct indexes, lazily: with `fixed`, those that use that answer for its
 * index, else all. The alternatives of one index (several holders disagreeing) multiply the choices;
 * the caller's attempt bound keeps that finite.
 */
function * choices (g: Group, k: number, fixedIndex?: number, fixed?: Answer): Generator<Map<number, Answer>> {
  const indexes = [...g.answers.keys()].filter(i => i !== fixedIndex).sort((a, b) => a - b)
  const need = fixed !== undefined ? k - 1 : k
  for (const subset of kSubsets(indexes, need)) {
    for (const picked of product(subset.map(i => distinct(g.answers.get(i) ?? []).map(a => [i, a] as const)))) {
      const m = new Map<number, Answer>(picked)
      if (fixed !== undefined && fixedIndex !== undefined) m.set(fixedIndex, fixed)
      yield m
    }
  }
}

/** Every k-element subset of `items`, in lexicographic order (lazily). */
function * kSubsets<T> (items: readonly T[], k: number, start = 0, prefix: T[] = []): Generator<T[]> {
  if (prefix.length === k) { yield prefix; return }
  for (let i = start; i <= items.length - (k - prefix.length); i++) yield * kSubsets(items, k, i + 1, [...prefix, items[i] as T])
}

/** The cartesian product of lists, lazily. */
function * product<T> (lists: ReadonlyArray<readonly T[]>, at = 0, prefix: T[] = []): Generator<T[]> {
  if (at === lists.length) { yield prefix; return }
  for (const x of lists[at] ?? []) yield * product(lists, at + 1, [...prefix, x])
}
