/** The shard client's adaptive limit on requests in flight to one persister (client.ts). */

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
