/** Shared test fixtures for src/peers: fixed identities, fake peer ids, forging helpers. */
import { deriveIdentity } from '../../../src/crypto/index.js'
import type { Identity, SodiumBackend } from '../../../src/crypto/index.js'
import { ROSTER_VERSION, rosterHash, rosterSigningBytes } from '../../../src/peers/index.js'
import type { Roster } from '../../../src/peers/index.js'

export const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

/** A syntactically valid Ed25519-style peer id ("12D3KooW" + 44 base58 characters), distinct per n. */
export function fakePeerId (n: number): string {
  let s = '12D3KooW'
  let x = n * 2654435761 + 12345
  for (let i = 0; i < 44; i++) {
    s += BASE58[x % 58] as string
    x = Math.floor(x / 58) + (i + 1) * 7919 + n
  }
  return s
}

export function identityFrom (sodium: SodiumBackend, byte: number): Identity {
  return deriveIdentity(sodium, new Uint8Array(32).fill(byte))
}

/** Re-signs an arbitrary draft as `signer` (for forging updates the builders refuse to make). */
export function forge (sodium: SodiumBackend, draft: Roster, signer: Identity): Roster {
  const r: Roster = { ...structuredClone(draft), updatedBy: signer.userId }
  r.signature = Buffer.from(sodium.sign(rosterSigningBytes(r), signer.signSecretKey as Uint8Array)).toString('base64')
  return r
}

/** The same roster as the next version (serial + 1, chained to `current`), re-signed by `signer` after `edit`. */
export function forgeNext (sodium: SodiumBackend, current: Roster, signer: Identity, edit: (draft: Roster) => void): Roster {
  const draft = structuredClone(current)
  draft.version = ROSTER_VERSION
  draft.serial = current.serial + 1
  draft.prev = rosterHash(current)
  edit(draft)
  return forge(sodium, draft, signer)
}

export type Json = string | number | boolean | Json[] | { [k: string]: Json }

/** Every leaf path of a JSON value. */
export function leafPaths (v: Json, prefix: Array<string | number> = []): Array<Array<string | number>> {
  if (Array.isArray(v)) return v.flatMap((x, i) => leafPaths(x, [...prefix, i]))
  if (typeof v === 'object') return Object.entries(v).flatMap(([k, x]) => leafPaths(x, [...prefix, k]))
  return [prefix]
}

/** A plausible different value of the same kind (hex stays hex, base64 stays base64 of the same length...). */
export function tamperValue (v: string | number | boolean): string | number | boolean {
  if (typeof v === 'boolean') return !v
  if (typeof v === 'number') return v + 1
  if (/^[0-9a-f]+$/.test(v) && v.length % 2 === 0) return (v[0] === '0' ? '1' : '0') + v.slice(1)
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(v) && v.length % 4 === 0 && v.length >= 44) {
    const b = Buffer.from(v, 'base64'); b[0] = (b[0] as number) ^ 1; return b.toString('base64')
  }
  if (/^[A-Za-z0-9_-]{43}$/.test(v)) {
    const b = Buffer.from(v, 'base64url'); b[0] = (b[0] as number) ^ 1; return b.toString('base64url')
  }
  if (v.startsWith('12D3KooW')) return v.slice(0, -1) + (v.endsWith('2') ? '3' : '2')
  if (v.startsWith('/')) return v.replace('127.0.0.1', '127.0.0.2').replace('/tcp/4', '/tcp/5')
  return v + 'x'
}

/** A deep copy of `obj` with the leaf at `path` tampered. */
export function tamperAt<T> (obj: T, path: Array<string | number>): T {
  const copy = structuredClone(obj) as unknown as Json
  let node = copy as Record<string | number, Json>
  for (const k of path.slice(0, -1)) node = node[k] as Record<string | number, Json>
  const last = path[path.length - 1] as string | number
  node[last] = tamperValue(node[last] as string | number | boolean)
  return copy as unknown as T
}
