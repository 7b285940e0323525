/**
 * Opening a home for one command: when the home belongs to a group, its node is started for the
 * command's duration (unless the daemon already runs it and the command was handed to the daemon),
 * member devices are dialled, and the repository is switched to the group's pack store.
 */
import type { HomeOptions } from './home.js'
import { Home } from './home.js'
import { GroupState } from './group-state.js'
import { NetworkNode, type NetworkOptions } from './network.js'

export interface Session { home: Home, net: NetworkNode | undefined }

/** The node of a home: started on demand, stopped when the home closes. */
export async function attachNetwork (home: Home, opts: NetworkOptions = {}): Promise<NetworkNode> {
  const state = await GroupState.load(home.dir)
  const net = await NetworkNode.start(home, state, opts)
  home.onClose(async () => { await net.stop() })
  if (state.file.roster !== null) {
    await net.refresh()
    home.useGroup(net.directory)
  }
  return net
}

/** Opens a home; starts its node only if the home is in a group (or `network` forces it). */
export async function openSession (opts: HomeOptions, network: NetworkOptions & { force?: boolean } = {}): Promise<Session> {
  const home = await Home.open(opts)
  try {
    const state = await GroupState.load(home.dir)
    if (state.file.roster === null && network.force !== true) return { home, net: undefined }
    return { home, net: await attachNetwork(home, network) }
  } catch (err: unknown) {
    await home.close()
    throw err
  }
}
