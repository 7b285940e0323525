/**
 * The retry policy (src/protocols/retry.ts) in virtual time: a fake clock whose sleep advances `now`
 * at once, so backoff, budgets and attempt deadlines are checked exactly and nothing really waits.
 */
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  AbortedError, NotFoundError, NotMemberError, ProtocolError, RefusedError, RetentionRefusedError, TimeoutError, UnauthenticatedError
} from '../../../src/errors.js'
import { DEFAULT_RETRY_POLICY, backoffDelay, isTransient, newRetryStats, withRetry, type Attempt, type RetryClock } from '../../../src/protocols/retry.js'

interface VirtualClock extends RetryClock { t: number, sleeps: number[] }

function virtualClock (random = (): number => 0.5): VirtualClock {
  const c: VirtualClock = {
    t: 1_000_000,
    sleeps: [],
    now: () => c.t,
    random,
    sleep: async (ms, signal) => {
      signal?.throwIfAborted()
      c.sleeps.push(ms)
      c.t += ms
    }
  }
  return c
}

/**
 * An operation that fails with `errors` in turn, then returns 'ok'. Each attempt takes `tookMs` of
 * virtual time, or ends at its deadline (what is left of the budget) as a real exchange does.
 */
function flaky (clock: VirtualClock, errors: unknown[], tookMs = 0): { fn: (a: Attempt) => Promise<string>, seen: Attempt[] } {
  const seen: Attempt[] = []
  return {
    seen,
    fn: async (a) => {
      seen.push(a)
      clock.t += Math.min(tookMs, a.remainingMs)
      const err = errors.shift()
      if (err !== undefined) throw err
      return 'ok'
    }
  }
}

const reset = (): ProtocolError => new ProtocolError('/p2pbak/shard/1.0.0: Unexpected EOF - stream closed while reading 0/1 bytes', { transport: 'broken' })

describe('protocols/retry', () => {
  it('transient: transport breaks and timed-out attempts; never an answer or a cancellation', () => {
    assert.ok(isTransient(reset()))
    assert.ok(isTransient(new TimeoutError('no answer')))
    for (const err of [new RefusedError('quota'), new RetentionRefusedError('kept'), new NotFoundError('gone'), new NotMemberError('no'),
      new UnauthenticatedError('bad'), new ProtocolError('malformed answer'), new AbortedError('stop'), new Error('bug'), 'a string']) {
      assert.equal(isTransient(err), false, String(err))
    }
    // a broken transport keeps the code callers already branch on
    assert.equal(reset().code, 'ERR_PROTOCOL')
  })

  it('retries a reset until it succeeds, with doubling jittered delays, and counts it', async () => {
    const clock = virtualClock()
    const stats = newRetryStats()
    const op = flaky(clock, [reset(), reset(), reset()])
    assert.equal(await withRetry('put', op.fn, { clock, stats }), 'ok')
    assert.deepEqual(op.seen.map(a => a.n), [1, 2, 3, 4])
    // random() = 0.5: three quarters of 100, 200, 400
    assert.deepEqual(clock.sleeps, [75, 150, 300])
    assert.deepEqual(stats, { attempts: 4, retries: 3, recovered: 1, gaveUp: 0 })
  })

  it('gives up after the attempt count and throws the last failure, saying so', async () => {
    const clock = virtualClock()
    const stats = newRetryStats()
    const last = reset()
    const op = flaky(clock, [reset(), reset(), reset(), reset(), reset(), last, reset()])
    await assert.rejects(withRetry('put', op.fn, { clock, stats }), (err: unknown) => {
      assert.equal(err, last)
      assert.match((err as Error).message, /gave up after 6 attempts/)
      return true
    })
    assert.equal(op.seen.length, DEFAULT_RETRY_POLICY.attempts)
    assert.deepEqual(stats, { attempts: 6, retries: 5, recovered: 0, gaveUp: 1 })
  })

  it('never retries an answer: refusals, not found, not a member fail at once', async () => {
    for (const err of [new RefusedError('over quota'), new RetentionRefusedError('kept'), new NotFoundError('no such share'), new NotMemberError('no')]) {
      const clock = virtualClock()
      const stats = newRetryStats()
      const op = flaky(clock, [err])
      await assert.rejects(withRetry('put', op.fn, { clock, stats }), (e: unknown) => e === err)
      assert.equal(op.seen.length, 1)
      assert.deepEqual(clock.sleeps, [])
      assert.deepEqual(stats, { attempts: 1, retries: 0, recovered: 0, gaveUp: 0 })
    }
  })

  it('a peer that stalls: two timed-out attempts and the call gives up (placement moves on)', async () => {
    const clock = virtualClock()
    const stats = newRetryStats()
    const op = flaky(clock, [new TimeoutError('a'), new TimeoutError('b'), undefined], 60_000)
    await assert.rejects(withRetry('put', op.fn, { clock, stats }), TimeoutError)
    assert.equal(op.seen.length, 2)
    assert.equal(stats.gaveUp, 1)
    // the second attempt's deadline is what is left of the 120 s budget
    assert.deepEqual(op.seen.map(a => a.remainingMs), [120_000, 120_000 - 60_000 - 75])
  })

  it('a peer that cannot be reached: three attempts, while resets in between do not count against it', async () => {
    const clock = virtualClock()
    const unreachable = (): ProtocolError => new ProtocolError('connect ECONNREFUSED', { transport: 'unreachable' })
    const op = flaky(clock, [unreachable(), reset(), unreachable(), unreachable(), reset()])
    await assert.rejects(withRetry('get', op.fn, { clock }), (err: unknown) => err instanceof ProtocolError && err.transport === 'unreachable')
    assert.equal(op.seen.length, 4)
    assert.ok(isTransient(unreachable()))
  })

  it('the time budget bounds the whole call: no attempt starts after it', async () => {
    const clock = virtualClock()
    const op = flaky(clock, [reset(), reset(), reset()], 50_000)
    await assert.rejects(withRetry('get', op.fn, { clock, policy: { budgetMs: 100_000 } }), ProtocolError)
    // 50 s, a wait, then a second attempt cut to the 49.9 s left: a third would start past the budget
    assert.deepEqual(op.seen.map(a => a.remainingMs), [100_000, 100_000 - 50_000 - 75])
    assert.equal(clock.t - 1_000_000, 100_000)
  })

  it('cancellation stops waiting at once and is reported as cancelled, not as the peer\'s failure', async () => {
    const clock = virtualClock()
    const ac = new AbortController()
    clock.sleep = async (_ms, signal) => { ac.abort(); signal?.throwIfAborted() }
    const op = flaky(clock, [reset(), reset()])
    await assert.rejects(withRetry('get', op.fn, { clock, signal: ac.signal }), AbortedError)
    assert.equal(op.seen.length, 1)
    // an already cancelled call makes no attempt
    const none = flaky(clock, [])
    await assert.rejects(withRetry('get', none.fn, { clock, signal: ac.signal }), AbortedError)
    assert.equal(none.seen.length, 0)
  })

  it('backoff: within [ceiling/2, ceiling], the ceiling doubling to maxDelayMs; any policy stays bounded in count and time', async () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 20 }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (retry, r) => {
      const ceiling = Math.min(DEFAULT_RETRY_POLICY.maxDelayMs, DEFAULT_RETRY_POLICY.baseDelayMs * 2 ** (retry - 1))
      const d = backoffDelay(DEFAULT_RETRY_POLICY, retry, () => r)
      return d >= Math.floor(ceiling / 2) && d <= ceiling
    }), { seed: 9, numRuns: 500 })
    await fc.assert(fc.asyncProperty(
      fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 0, max: 200_000 }), fc.integer({ min: 0, max: 30_000 }),
      async (attempts, baseDelayMs, budgetMs, tookMs) => {
        const clock = virtualClock(Math.random)
        const op = flaky(clock, Array.from({ length: 50 }, reset), tookMs)
        await assert.rejects(withRetry('x', op.fn, { clock, policy: { attempts, baseDelayMs, budgetMs } }), ProtocolError)
        assert.ok(op.seen.length <= attempts)
        // no attempt starts past the budget, and the last one's deadline ends with it
        assert.ok(clock.t - 1_000_000 <= budgetMs, `spent ${clock.t - 1_000_000} of ${budgetMs}`)
      }), { seed: 10, numRuns: 200 })
  })

  it('rejects a policy that would not be bounded', async () => {
    await assert.rejects(withRetry('x', async () => 1, { policy: { attempts: 0 } }), RangeError)
    await assert.rejects(withRetry('x', async () => 1, { policy: { budgetMs: Number.POSITIVE_INFINITY } }), RangeError)
  })
})
