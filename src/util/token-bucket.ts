/**
 * A byte-rate limit (`--limit-upload` / `--limit-download`, KiB/s as restic's): a token bucket that
 * refills at `bytesPerSecond` and holds at most one second's worth (`burst`). Takers wait in order
 * of arrival; a take larger than the burst is split, so one big share cannot starve the others for
 * long. The clock and the wait are injected (tests run it in virtual time).
 */
export interface BucketClock {
  now: () => number
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>
}

const SYSTEM: BucketClock = {
  now: () => performance.now(),
  sleep: async (ms, signal) => await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve() }, ms)
    const onAbort = (): void => { clearTimeout(t); reject(signal?.reason) }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

export class TokenBucket {
  private tokens: number
  private last: number
  private queue: Promise<void> = Promise.resolve()
  /** bytes that went through the bucket (for reports and tests) */
  taken = 0

  constructor (readonly bytesPerSecond: number, private readonly clock: BucketClock = SYSTEM, readonly burst = Math.max(16 * 1024, bytesPerSecond)) {
    if (!Number.isFinite(bytesPerSecond) || bytesPerSecond <= 0) throw new RangeError(`a rate limit must be a positive number of bytes per second, got ${bytesPerSecond}`)
    this.tokens = this.burst
    this.last = clock.now()
  }

  /** Waits until `bytes` may go; callers are served in the order they called. */
  async take (bytes: number, signal?: AbortSignal): Promise<void> {
    if (bytes <= 0) return
    const turn = this.queue.then(async () => await this.takeNow(bytes, signal))
    // the next taker waits for this one, whether it finished or was cancelled (this caller gets the error)
    this.queue = turn.then(() => undefined, () => undefined)
    await turn
  }

  private async takeNow (bytes: number, signal?: AbortSignal): Promise<void> {
    let left = bytes
    while (left > 0) {
      signal?.throwIfAborted()
      this.refill()
      const want = Math.min(left, this.burst)
      if (this.tokens >= want) {
        this.tokens -= want
        this.taken += want
        left -= want
        continue
      }
      await this.clock.sleep(Math.ceil(((want - this.tokens) / this.bytesPerSecond) * 1000), signal)
    }
  }

  private refill (): void {
    const t = this.clock.now()
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.bytesPerSecond)
    this.last = t
  }
}
