/**
 * The one place that talks to the @ronomon/reed-solomon native addon: loads it, caches one encoding
 * context per (k, m), and turns its callback into a promise. The work runs on the libuv pool, so the
 * event loop stays free while a 16 MiB pack is coded.
 */
import { createRequire } from 'node:module'
import type * as Ronomon from '@ronomon/reed-solomon'

type Binding = typeof Ronomon

function isBinding (mod: unknown): mod is Binding {
  if (typeof mod !== 'object' || mod === null) return false
  return 'create' in mod && typeof mod.create === 'function' &&
    'encode' in mod && typeof mod.encode === 'function'
}

let loaded: Binding | undefined
function binding (): Binding {
  if (loaded === undefined) {
    const mod: unknown = createRequire(import.meta.url)('@ronomon/reed-solomon')
    if (!isBinding(mod)) throw new Error('@ronomon/reed-solomon did not load as expected')
    loaded = mod
  }
  return loaded
}

const contexts = new Map<number, Buffer>()
function context (k: number, m: number): Buffer {
  const key = k * 8 + m
  let ctx = contexts.get(key)
  if (ctx === undefined) {
    ctx = binding().create(k, m)
    contexts.set(key, ctx)
  }
  return ctx
}

/**
 * Computes the missing shards in place. `data` holds the k data shards back to back and `parity`
 * the m parity shards (m >= 1), all `data.byteLength / k` bytes. `present` is the bit set of shards
 * that hold their true bytes (at least k of them); `targets` (not empty, at most m, disjoint from
 * `present`) are the ones to compute. The addon may also fill other absent shards.
 */
export async function codeInPlace (
  k: number, m: number, present: number, targets: number, data: Buffer, parity: Buffer
): Promise<void> {
  const rs = binding()
  const ctx = context(k, m)
  await new Promise<void>((resolve, reject) => {
    try {
      rs.encode(ctx, present, targets, data, 0, data.byteLength, parity, 0, parity.byteLength, (error) => {
        if (error !== undefined && error !== null) reject(error)
        else resolve()
      })
    } catch (err: unknown) {
      reject(err)
    }
  })
}
