/**
 * A small seeded PRNG (mulberry32) for tests that pick random moments or choices and must be
 * repeatable: print the seed, and accept it back from an environment variable.
 */
import { randomInt } from 'node:crypto'

export class InvalidSeedError extends Error {
  constructor (readonly variable: string, readonly value: string) {
    super(`${variable}=${value} is not a seed: give an integer between 0 and 4294967295`)
    this.name = 'InvalidSeedError'
  }
}

/** The seed from `variable` when set, else a fresh random one. */
export function seedFrom (variable: string, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[variable]
  if (raw === undefined || raw === '') return randomInt(0, 0x1_0000_0000)
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 0 || n > 0xffff_ffff) throw new InvalidSeedError(variable, raw)
  return n
}

export class Rng {
  private state: number

  constructor (readonly seed: number) {
    this.state = seed >>> 0
  }

  /** A float in [0, 1). */
  next (): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000
  }

  /** An integer in [lo, hi). */
  int (lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo))
  }

  /** One element of a non-empty array. */
  pick<T> (items: readonly T[]): T {
    if (items.length === 0) throw new RangeError('pick from an empty array')
    return items[this.int(0, items.length)] as T
  }

  /** `n` deterministic pseudo-random bytes. */
  bytes (n: number): Buffer {
    const out = Buffer.allocUnsafe(n)
    let i = 0
    for (; i + 4 <= n; i += 4) out.writeUInt32LE(Math.floor(this.next() * 0x1_0000_0000), i)
    for (; i < n; i++) out[i] = Math.floor(this.next() * 256)
    return out
  }
}
