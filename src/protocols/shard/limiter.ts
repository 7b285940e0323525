/** The shard client's adaptive limits to one persister (client.ts): requests in flight, and the size of parts. */

/**
 * At most `limit` tasks at once; a finishing task hands its slot to the next waiter. The limit
 * adapts to the link (additive increase, multiplicative decrease): halved when an exchange fails
 * transiently — on a connection that resets, fewer parallel transfers each carry less of the
 * traffic a reset cuts — and raised by one after `limit` exchanges in a row succeed, up to `max`.
 */
export class Limiter {
  private active = 0
  private readonly waiting: Array<() => void> = []
  private streak = 0
  limit: number
  constructor (private readonly max: number) { this.limit = max }

  async run<T> (task: () => Promise<T>): Promise<T> {
    // a waiter is counted in by whoever wakes it
    if (this.active < this.limit) this.active++
    else await new Promise<void>((resolve) => this.waiting.push(resolve))
    try {
      return await task()
    } finally {
      this.active--
      this.pump()
    }
  }

  failed (): void {
    this.limit = Math.max(1, Math.floor(this.limit / 2))
    this.streak = 0
  }

  succeeded (): void {
    if (this.limit >= this.max || ++this.streak < this.limit) return
    this.limit++
    this.streak = 0
    this.pump()
  }

  private pump (): void {
    while (this.active < this.limit) {
      const next = this.waiting.shift()
      if (next === undefined) return
      this.active++
      next()
    }
  }
}

/**
 * The size of a share's parts after the first: doubled after a part goes through at the first try,
 * halved after one needed a retry, between `min` and `max`. A clean link with a long round trip ends
 * with large parts (few round trips per share); a lossy one with small ones (a reset costs one part).
 */
export class PartSize {
  size: number
  constructor (private readonly min: number, private readonly max: number) { this.size = min }

  after (retried: boolean): void {
    this.size = retried ? Math.max(this.min, Math.floor(this.size / 2)) : Math.min(this.max, this.size * 2)
  }
}
