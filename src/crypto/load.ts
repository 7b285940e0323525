/** Loading a backend: each binding is imported only when first asked for, then shared. */
import { checkedBackend } from './backend.js'
import type { BackendName, SodiumBackend } from './backend.js'

const loaded = new Map<BackendName, Promise<SodiumBackend>>()

async function load (name: BackendName): Promise<SodiumBackend> {
  if (name === 'sodium-native') {
    const { nativeSodium } = await import('./backend-native.js')
    return checkedBackend(nativeSodium())
  }
  const { wasmSodium } = await import('./backend-wasm.js')
  return checkedBackend(await wasmSodium())
}

/** default 'sodium-native' (fast native). 'libsodium-wrappers' is the portable WASM backend producing identical bytes. */
export async function loadBackend (name: BackendName = 'sodium-native'): Promise<SodiumBackend> {
  if (name !== 'sodium-native' && name !== 'libsodium-wrappers') throw new RangeError(`unknown crypto backend: ${String(name)}`)
  let p = loaded.get(name)
  if (p === undefined) {
    p = load(name)
    loaded.set(name, p)
    void p.catch(() => loaded.delete(name)) // a failed load may be retried
  }
  return await p
}
