/** Global options and opening the home, shared by every command. */
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import type { Home, HomeOptions } from '../node/home.js'
import { openSession } from '../node/session.js'
import type { NetworkNode } from '../node/network.js'
import type { Upkeep } from '../node/upkeep.js'
import type { ServiceContext } from '../node/service.js'
import type { KdfParams } from '../crypto/index.js'
import { readPassphrase } from './passphrase.js'
import type { CliIo } from './io.js'

export interface GlobalOptions { home?: string, json?: boolean }

export interface CommandContext {
  io: CliIo
  json: boolean
  homeDir: string
  homeOptions: () => HomeOptions
  /** the home, with its group's node running when it is in a group */
  openHome: () => Promise<Home>
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
  const kdf = testKdf(io)
  const homeOptions = (): HomeOptions => ({
    home: homeDir,
    passphrase: async () => await readPassphrase(io),
    backend: io.env.P2PBAK_CRYPTO_BACKEND === 'libsodium-wrappers' ? 'libsodium-wrappers' : 'sodium-native',
    ...(kdf !== undefined ? { kdf } : {})
  })
  return {
    io,
    json: globals.json === true,
    homeDir,
    homeOptions,
    openHome: async () => {
      if (daemon === undefined) return (await openSession(homeOptions())).home
      await daemon.ready?.()
      return daemon.home
    },
    openNetwork: async () => {
      if (daemon !== undefined) { await daemon.ready?.(); return daemon }
      const { home, net } = await openSession(homeOptions(), { force: true, dht: false })
      if (net === undefined) throw new Error('unreachable: a forced session has a node')
      return { home, net }
    },
    inDaemon: daemon !== undefined,
    upkeep: daemon?.upkeep,
    lastRound: daemon?.lastRound
  }
}

/**
 * P2PBAK_KDF="ops,mem" overrides the Argon2id cost of NEW key files (tests use a cheap one so that a
 * suite of hundreds of CLI runs stays fast). Existing key files always use the parameters they store.
 */
function testKdf (io: CliIo): KdfParams | undefined {
  const v = io.env.P2PBAK_KDF
  if (v === undefined) return undefined
  const [ops, mem] = v.split(',').map(Number)
  if (ops === undefined || mem === undefined || !Number.isInteger(ops) || !Number.isInteger(mem)) return undefined
  return { opslimit: ops, memlimit: mem }
}
