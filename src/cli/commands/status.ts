/** `status`: peers (online, roles, space) and, per snapshot, how many more peers may be lost. */
import type { Command } from 'commander'
import { peerIdFromString } from '@libp2p/peer-id'
import { snapshotHealth } from '../../node/health.js'
import { formatBytes, print, printJson } from '../io.js'
import type { CommandContext } from '../context.js'

export function registerStatus (program: Command, ctx: () => CommandContext): void {
  program.command('status')
    .description('peers (online, roles, space) and, for each snapshot, how many more peers may be lost')
    .action(async () => {
      const c = ctx()
      const { home, net } = await c.openNetwork()
      try {
        // the daemon refreshes on its own schedule and its connections show who is alive
        if (!c.inDaemon) await net.refresh()
        if (net.roster !== null) home.useGroup(net.directory)
        const candidates = net.directory.candidates()
        const peers = (net.roster?.members ?? []).flatMap(m => m.devices.map(d => {
          const cand = candidates.find(x => x.peerId === d.peerId)
          const you = d.peerId === net.peerId
          const roles: string[] = []
          if (cand !== undefined) roles.push('persister')
          return {
            peerId: d.peerId, name: d.name, userId: m.userId, you,
            online: you || net.node.getConnections(peerIdFromString(d.peerId)).length > 0,
            roles, freeBytes: cand?.freeBytes ?? 0
          }
        }))
        const snapshots = await snapshotHealth(home, net)
        if (c.json) { printJson(c.io, { peerId: net.peerId, group: net.roster === null ? null : { id: net.roster.groupId, name: net.roster.name }, peers, snapshots }); return }
        print(c.io, net.roster === null ? 'not in a group: backups stay on this disk (p2pbak group create NAME, or join CODE)' : `group "${net.roster.name}", ${net.roster.members.length} member(s)`)
        for (const p of peers) print(c.io, `  ${p.you ? '*' : ' '} ${p.name.padEnd(16)} ${p.online ? 'online ' : 'offline'} ${p.roles.join(',') || '-'} ${p.freeBytes > 0 ? formatBytes(p.freeBytes) + ' free' : ''}`)
        for (const s of snapshots) print(c.io, `  snapshot ${s.id.slice(0, 8)} ${s.time}: ${s.local ? 'local only' : `${s.health} shares reachable per pack at worst, can lose ${s.canLose} more peer(s)`}${s.readable ? '' : ' — NOT READABLE NOW'}`)
      } finally {
        await home.close()
      }
    })
}
