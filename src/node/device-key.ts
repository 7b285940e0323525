/**
 * The device's libp2p key (its peer id), at rest (docs/format/keys.md §12):
 *   - a full home keeps it in HOME/device.key sealed under a subkey of the master seed, so the file
 *     alone (a copied home without the passphrase, a stray backup of the file) cannot connect as the
 *     device; an older clear device.key is read once and written back sealed
 *   - a write-only machine derives it from the device seed inside its key file (keys.md §11.2),
 *     which its passphrase protects; it keeps no device.key (an older clear copy is removed)
 * Both need the home's identity open: every command that starts a node has opened its home first.
 */
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { isSealedDeviceKey, openDeviceKey, sealDeviceKey } from '../crypto/index.js'
import { InvalidConfigError, errnoCode, errorMessage } from '../errors.js'
import { writeFileAtomic } from '../store/index.js'
import { syncDir } from '../store/atomic.js'
import { scopedLogger } from '../util/log.js'
import type { Home } from './home.js'
import { decodeDeviceKey, deviceKeyFromSeed, encodeDeviceKey, newDeviceKey } from './libp2p-node.js'

const log = scopedLogger('device-key')

export const DEVICE_KEY_FILE = 'device.key'

/** This home's device key: read (and sealed, if it was in clear), or made on first use. */
export async function loadDeviceKey (home: Home): Promise<PrivateKey> {
  const path = join(home.dir, DEVICE_KEY_FILE)
  if (home.writeOnly !== undefined) {
    const key = await deviceKeyFromSeed(home.writeOnly.deviceSeed)
    await removeClearCopy(path)
    return key
  }
  const wrap = home.deviceKeyWrap
  if (wrap === undefined) throw new Error('a full home must carry the key that seals device.key')
  let bytes: Uint8Array
  try {
    bytes = new Uint8Array(await readFile(path))
  } catch (err: unknown) {
    if (errnoCode(err) !== 'ENOENT') throw new InvalidConfigError(`${path} is unreadable; delete it to give this device a new identity`, { cause: err })
    const key = await newDeviceKey()
    await saveSealed(home, path, key)
    return key
  }
  if (isSealedDeviceKey(bytes)) {
    let opened: { peerId: string, keyBytes: Uint8Array }
    let key: PrivateKey
    try {
      opened = openDeviceKey(home.sodium, wrap, home.identity.userId, bytes)
      key = decodeDeviceKey(opened.keyBytes)
    } catch (err: unknown) {
      throw new InvalidConfigError(`${path} does not open with this home's identity (${errorMessage(err)}); it was copied from another home or damaged: delete it to give this device a new identity`, { cause: err })
    }
    if (peerIdFromPrivateKey(key).toString() !== opened.peerId) throw new InvalidConfigError(`${path} names peer id ${opened.peerId} but holds another key; delete it to give this device a new identity`)
    return key
  }
  // an older home: the same key, sealed from now on
  let key: PrivateKey
  try {
    key = decodeDeviceKey(bytes)
  } catch (err: unknown) {
    throw new InvalidConfigError(`${path} is unreadable; delete it to give this device a new identity`, { cause: err })
  }
  await saveSealed(home, path, key)
  log('%s was stored in clear: it is now sealed under this home\'s identity (docs/format/keys.md §12)', path)
  return key
}

async function saveSealed (home: Home, path: string, key: PrivateKey): Promise<void> {
  const wrap = home.deviceKeyWrap as Uint8Array
  const text = sealDeviceKey(home.sodium, wrap, home.identity.userId, peerIdFromPrivateKey(key).toString(), encodeDeviceKey(key))
  await writeFileAtomic(path, text, { mode: 0o600 })
}

/** A write-only home made before its device key came from the key file kept a clear copy: removed. */
async function removeClearCopy (path: string): Promise<void> {
  try {
    await rm(path)
  } catch (err: unknown) {
    if (errnoCode(err) === 'ENOENT') return
    throw new InvalidConfigError(`${path} (a clear copy of this write-only machine's device key) could not be removed: delete it by hand`, { cause: err })
  }
  await syncDir(join(path, '..'))
  log('%s removed: a write-only machine takes its device key from its key file (docs/format/keys.md §12)', path)
}
