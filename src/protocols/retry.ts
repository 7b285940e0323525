/**
 * One retry policy for every p2pbak client exchange (shard puts and gets, records, join, roster and
 * space requests): a failed attempt is tried again only when the failure is transient — the
 * connection was reset or closed, the stream ended early, a dial failed, one attempt's deadline
 * passed — never when the peer answered (a refusal, not found, not a member, a malformed answer).
 * Retries wait an exponential backoff with jitter, and every loop is bounded twice: by a number of
 * attempts and by a total time budget (no attempt starts, and none runs, past it).
 * The clock (now, sleep, random) is injected, so tests run the policy in virtual time.
 * docs/network.md "Retries" and docs/protocols/shard.md §10 describe it for users.
 */
import { setTimeout as sleepFor } from 'node:timers/promises'
import { AbortedError, ProtocolError, TimeoutError, errorMessage } from '../errors.js'

export interface RetryPolicy {
  /** attempts in all, the first one included (1 = no retry). @default 6 */
  attempts: number
  /** the delay before the first retry, ms; it doubles per retry. @default 100 */
  baseDelayMs: number
  /** the largest delay between two attempts, ms. @default 4000 */
  maxDelayMs: number
  /**
   * the total time budget, ms, from the start of the first attempt: no attempt starts after it, and
   * an attempt's own deadline is cut to what is left of it. @default 120000
   */
  budgetMs: number
  /**
   * how many attempts may end at their deadline (TimeoutError) before the call gives up: a peer
   * that stalls twice is left for another one, a reset connection is tried again. @default 2
   */
  maxTimeouts: number
  /**
   * how many attempts may find nobody at the peer's addresses (a ProtocolError with transport
   * 'unreachable': refused, no route) before the call gives up: an offline peer is known within a
   * second. @default 3
   */
  maxUnreachable: number
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = Object.freeze({ attempts: 6, baseDelayMs: 100, maxDelayMs: 4000, budgetMs: 120_000, maxTimeouts: 2, maxUnreachable: 3 })

/** Time as the policy sees it; tests pass a virtual one. */
export interface RetryClock {
  now: () => number
  /** resolves after `ms`, rejects at once when `signal` aborts */
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>
  /** uniform in [0, 1) */
  random: () => number
}

export const SYSTEM_CLOCK: RetryClock = {
  now: () => Date.now(),
  sleep: async (ms, signal) => { await sleepFor(ms, undefined, signal !== undefined ? { signal } : {}) },
  random: Math.random
}

/**
 * What a client retried, for summaries (`p2pbak backup` reports it). Counters only grow.
 *   attempts  exchanges started, first attempts and retries
 *   retries   attempts that were retries of a transient failure
 *   recovered calls that failed transiently at least once and then succeeded
 *   gaveUp    calls that failed transiently on their last allowed attempt (count or time budget)
 */
export interface RetryStats { attempts: number, retries: number, recovered: number, gaveUp: number }

export function newRetryStats (): RetryStats {
  return { attempts: 0, retries: 0, recovered: 0, gaveUp: 0 }
}

/** What one attempt is told: its number (1-based) and the ms left of the budget (its deadline must not exceed it). */
export interface Attempt { n: number, remainingMs: number }

export interface RetryOptions {
  policy?: Partial<RetryPolicy>
  clock?: RetryClock
  /** the caller's cancellation: stops waiting and retrying at once */
  signal?: AbortSignal
  /** which failures to retry. @default isTransient */
  retryable?: (err: unknown) => boolean
  /** counters to add to */
  stats?: RetryStats
  /** told of every failed attempt that will be retried, before its backoff */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void
}

/**
 * True for failures worth another attempt on a fresh stream or connection: the transport broke or
 * found nobody (a ProtocolError with `transport` set) or one attempt's deadline passed
 * (TimeoutError). A peer's answer — refused, not found, invalid, not a member — is final, and so is
 * the caller's own cancellation.
 */
export function isTransient (err: unknown): boolean {
  return (err instanceof ProtocolError && err.transport !== undefined) || err instanceof TimeoutError
}

function isUnreachable (err: unknown): boolean {
  return err instanceof ProtocolError && err.transport === 'unreachable'
}

/**
 * The delay before retry number `retry` (1-based): min(max, base·2^(retry-1)), of which a random
 * half is taken off ("equal jitter": never zero, never in lock step with other clients).
 */
export function backoffDelay (policy: RetryPolicy, retry: number, random: () => number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1))
  return Math.round(ceiling / 2 + random() * (ceiling / 2))
}

function resolvePolicy (p: Partial<RetryPolicy> | undefined): RetryPolicy {
  const policy = { ...DEFAULT_RETRY_POLICY, ...p }
  if (!Number.isInteger(policy.attempts) || policy.attempts < 1) throw new RangeError(`retry attempts must be a positive integer, got ${policy.attempts}`)
  for (const key of ['baseDelayMs', 'maxDelayMs', 'budgetMs', 'maxTimeouts', 'maxUnreachable'] as const) {
    if (!Number.isFinite(policy[key]) || policy[key] < 0) throw new RangeError(`retry ${key} must be a non-negative number, got ${policy[key]}`)
  }
  return policy
}

/** A function, not an inline test: TypeScript would narrow `signal.aborted` across awaits. */
function aborted (signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true
}

function cancelled (what: string, signal: AbortSignal | undefined, cause?: unknown): AbortedError {
  return new AbortedError(`${what} was cancelled`, { cause: cause ?? signal?.reason })
}

/**
 * Runs `fn` until it succeeds, fails for good (a failure `retryable` rejects), or the policy's
 * attempts or time budget run out; then the last failure is thrown as it was. A transient failure
 * that exhausted the policy keeps its class, and its message says how many attempts were made.
 */
export async function withRetry<T> (what: string, fn: (attempt: Attempt) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const policy = resolvePolicy(opts.policy)
  const clock = opts.clock ?? SYSTEM_CLOCK
  const retryable = opts.retryable ?? isTransient
  const stats = opts.stats
  const start = clock.now()
  let timeouts = 0
  let unreachable = 0
  for (let n = 1; ; n++) {
    if (aborted(opts.signal)) throw cancelled(what, opts.signal)
    const remainingMs = Math.max(0, policy.budgetMs - (clock.now() - start))
    if (stats !== undefined) { stats.attempts++; if (n > 1) stats.retries++ }
    try {
      const value = await fn({ n, remainingMs })
      if (n > 1 && stats !== undefined) stats.recovered++
      return value
    } catch (err: unknown) {
      if (aborted(opts.signal) || !retryable(err)) throw err
      if (err instanceof TimeoutError) timeouts++
      if (isUnreachable(err)) unreachable++
      const delayMs = backoffDelay(policy, n, clock.random)
      const spent = clock.now() - start
      if (n >= policy.attempts || timeouts >= policy.maxTimeouts || unreachable >= policy.maxUnreachable || spent + delayMs >= policy.budgetMs) {
        if (stats !== undefined) stats.gaveUp++
        if (n > 1 && err instanceof Error) err.message += ` (gave up after ${n} attempts in ${Math.round(spent)} ms)`
        throw err
      }
      opts.onRetry?.(err, n, delayMs)
      try {
        await clock.sleep(delayMs, opts.signal)
      } catch (sleepErr: unknown) {
        if (aborted(opts.signal)) throw cancelled(what, opts.signal, err)
        throw new ProtocolError(`${what}: waiting to retry failed (${errorMessage(sleepErr)})`, { cause: err })
      }
    }
  }
}
