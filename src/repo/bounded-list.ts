/**
 * A peer's listing is its word, and its length too: bounded in entries and in waiting time, so a peer
 * that lists forever or drips its answer cannot hang a command (docs/network.md §9.3).
 */
import { errorMessage } from '../errors.js'
import type { AbortOptions } from '../store/index.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('repo:group')

/** Entries one peer's listing may have (shares: about 16 TB of 16 MiB shares). */
export const LIST_MAX_ENTRIES_PER_PEER = 1_000_000
/** Time spent waiting for one peer's listing, in all. */
export const LIST_BUDGET_MS = 120_000

export interface ListBounds { budgetMs?: number, maxEntries?: number }

/**
 * A peer's listing, cut off (and logged) at LIST_MAX_ENTRIES_PER_PEER entries or LIST_BUDGET_MS of
 * waiting for it (the time the caller spends on each entry does not count); a listing that fails ends
 * with what it gave (an unreachable peer lists nothing; the others still answer).
 */
export async function * boundedList<T> (
  list: (options: AbortOptions) => AsyncIterable<T>, what: string, options?: AbortOptions,
  bounds: ListBounds = {},
  /** told why, when the listing ended before its end (failed, or cut off at a bound) */
  onCut?: (why: string) => void
): AsyncGenerator<T> {
  const budgetMs = bounds.budgetMs ?? LIST_BUDGET_MS
  const maxEntries = bounds.maxEntries ?? LIST_MAX_ENTRIES_PER_PEER
  const stop = new AbortController()
  const signal = options?.signal !== undefined ? AbortSignal.any([options.signal, stop.signal]) : stop.signal
  const it = list({ signal })[Symbol.asyncIterator]()
  let waited = 0
  let count = 0
  try {
    while (true) {
      const started = Date.now()
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<'timeout'>(resolve => { timer = setTimeout(() => resolve('timeout'), Math.max(0, budgetMs - waited)) })
      const next = await Promise.race([it.next(), timeout]).finally(() => clearTimeout(timer))
      waited += Date.now() - started
      if (next === 'timeout') { log.error('listing %s took more than %d ms: the rest is ignored', what, budgetMs); onCut?.(`took more than ${budgetMs} ms`); return }
      if (next.done === true) return
      if (++count > maxEntries) { log.error('listing %s gave more than %d entries: the rest is ignored', what, maxEntries); onCut?.(`gave more than ${maxEntries} entries`); return }
      yield next.value
    }
  } catch (err: unknown) {
    // an unreachable peer lists nothing; the others still answer
    options?.signal?.throwIfAborted()
    log('listing %s failed: %s', what, errorMessage(err))
    onCut?.(`failed: ${errorMessage(err)}`)
  } finally {
    stop.abort()
  }
}

