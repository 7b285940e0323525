/**
 * Opening a home for one command: when the home belongs to a group, its node is started for the
 * command's duration (unless the daemon already runs it and the command was handed to the daemon),
 * member devices are dialled, and the repository is switched to the group's pack store.
 *
 * The network stack (libp2p, the DHT, Noise) costs about a second to load: it is imported only when a
 * command needs a node, so local commands start fast.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { HomeOptions } from './home.js'
import { Home } from './home.js'
import type { NetworkNode, NetworkOptions } from './network.js'
import { errnoCode, InvalidConfigError } from '../errors.js'

export interface Session { home: Home, net: NetworkNode | undefined }

/** The node of a home: started on demand, stopped when the home closes. */
export async function attachNetwork (home: Home, opts: NetworkOptions = {}): Promise<NetworkNode> {
  const [{ GroupState }, { NetworkNode }] = await Promise.all([import('./group-state.js'), import('./network.js')])
  const state = await GroupState.load(home)
  const net = await NetworkNode.start(home, state, opts)
  if (opts.now !== undefined) home.now = opts.now
  home.onClose(async () => { await net.stop() })
  if (state.file.roster !== null) {
    await net.refresh()
    home.useGroup(net.directory)
  }
  return net
}

/** Whether HOME/group.json holds a roster (without loading the network stack). */
async function inGroup (dir: string): Promise<boolean> {
  const path = join(dir, 'group.json')
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err: unknown) {
    if (errnoCode(err) === 'ENOENT') return false
    throw err
  }
  try {
    const file = JSON.parse(text) as { roster?: unknown }
    return file.roster !== null && file.roster !== undefined
  } catch (err: unknown) {
    throw new InvalidConfigError(`${path} is not valid JSON`, { cause: err })
  }
}

/** Opens a home; starts its node only if the home is in a group (or `network` forces it). */
export async function openSession (opts: HomeOptions, network: NetworkOptions & { force?: boolean } = {}): Promise<Session> {
  const home = await Home.open(opts)
  try {
    if (network.force !== true && !(await inGroup(home.dir))) return { home, net: undefined }
    return { home, net: await attachNetwork(home, network) }
  } catch (err: unknown) {
    await home.close()
    throw err
  }
}
