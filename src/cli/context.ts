/** Global options and opening the home, shared by every command. */
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import type { Home, HomeOptions } from '../node/home.js'
import type { NetworkNode } from '../node/network.js'
import type { Upkeep } from '../node/upkeep.js'
import type { ServiceContext } from '../node/service.js'
import type { KdfParams } from '../crypto/index.js'
import { InvalidArgumentError } from '../errors.js'
import { readPassphrase } from './passphrase.js'
import type { CliIo } from './io.js'

export interface GlobalOptions { home?: string, json?: boolean }

export interface CommandContext {
  io: CliIo
  json: boolean
  homeDir: string
  homeOptions: () => HomeOptions
  /**
   * The home, with its group's node running when it is in a group. `preload`: the command's own
   * modules, imported while the home's key is derived (HomeOptions.preload; a daemon's home: beside
   * its readiness); once it resolved they are loaded. See {@link preloaded}.
   */
  openHome: (preload?: () => Promise<unknown>) => Promise<Home>
  /** the home and its node, started even outside a group (group create, join) */
  openNetwork: () => Promise<{ home: Home, net: NetworkNode }>
  /** true when the daemon runs this command with its own home and node */
  inDaemon: boolean
  /** the daemon's audit and repair loop, when the daemon runs this command */
  upkeep: Upkeep | undefined
  /** the daemon's last round (errors included), when the daemon runs this command */
  lastRound: ServiceContext['lastRound'] | undefined
}

/**
 * What the daemon lends to the commands it runs: its open home and its running node, its upkeep,
 * `ready` (the members' offers learned since the last roster change) and its last round's report.
 */
export type DaemonServices = Pick<ServiceContext, 'home' | 'net'> & Partial<Omit<ServiceContext, 'home' | 'net'>>

export function makeContext (io: CliIo, globals: GlobalOptions, daemon?: DaemonServices): CommandContext {
  const homeDir = resolve(globals.home ?? io.env.P2PBAK_HOME ?? join(homedir(), '.p2pbak'))
  const homeOptions = (): HomeOptions => ({
    home: homeDir,
    passphrase: async () => await readPassphrase(io),
    backend: io.env.P2PBAK_CRYPTO_BACKEND === 'libsodium-wrappers' ? 'libsodium-wrappers' : 'sodium-native'
  })
  return {
    io,
    json: globals.json === true,
    homeDir,
    homeOptions,
    openHome: async (preload) => {
      if (daemon === undefined) {
        const { openSession } = await import('../node/session.js')
        return (await openSession({ ...homeOptions(), ...(preload !== undefined ? { preload } : {}) })).home
      }
      await Promise.all([daemon.ready?.(), preload?.()])
      return daemon.home
    },
    openNetwork: async () => {
      if (daemon !== undefined) { await daemon.ready?.(); return daemon }
      const { openSession } = await import('../node/session.js')
      const { home, net } = await openSession(homeOptions(), { force: true, dht: false })
      if (net === undefined) throw new Error('unreachable: a forced session has a node')
      return { home, net }
    },
    inDaemon: daemon !== undefined,
    upkeep: daemon?.upkeep,
    lastRound: daemon?.lastRound
  }
}

/** The weakest Argon2id a new key file may get outside tests: libsodium's "interactive" level (2 passes, 64 MiB). */
export const KDF_FLOOR: KdfParams = Object.freeze({ opslimit: 2, memlimit: 64 * 1024 * 1024 })

/**
 * The Argon2id cost of a NEW key file (init, recover): the default, or P2PBAK_KDF="ops,mem" when it
 * is at least KDF_FLOOR. Below the floor it is refused unless P2PBAK_INSECURE_TEST_KDF=1 is set too
 * (tests use a cheap one so that hundreds of CLI runs stay fast): a stray variable in a user's
 * environment must not weaken the seed's protection. Existing key files keep the parameters they store.
 * @throws InvalidArgumentError for a malformed value, or one below the floor
 */
export function newKeyKdf (io: CliIo): { kdf?: KdfParams } {
  const v = io.env.P2PBAK_KDF
  if (v === undefined || v === '') return {}
  const [ops, mem] = v.split(',').map(Number)
  if (ops === undefined || mem === undefined || !Number.isSafeInteger(ops) || !Number.isSafeInteger(mem) || ops < 1 || mem < 8192) {
    throw new InvalidArgumentError(`P2PBAK_KDF="${v}" is not "opslimit,memlimit" (e.g. 3,67108864); unset it to use the default`)
  }
  if ((ops < KDF_FLOOR.opslimit || mem < KDF_FLOOR.memlimit) && io.env.P2PBAK_INSECURE_TEST_KDF !== '1') {
    throw new InvalidArgumentError(`P2PBAK_KDF="${v}" is below the floor (${KDF_FLOOR.opslimit} passes, ${KDF_FLOOR.memlimit / 1048576} MiB) and would let a thief guess the passphrase fast; unset it (it is for tests, with P2PBAK_INSECURE_TEST_KDF=1)`)
  }
  return { kdf: { opslimit: ops, memlimit: mem } }
}

/**
 * Modules a command imports while its home's key is derived: `const m = preloaded(load)`, then
 * `c.openHome(m)` imports them, and `await m()` after it hands them out (imported once).
 */
export function preloaded<T> (load: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined
  return async () => await (p ??= load())
}
