/** `status`: peers (online, roles, space) and, per snapshot, how many more peers may be lost. */
import type { Command } from 'commander'
import { toHex } from '../../util/bytes.js'
import { describePolicy, parseRetentionSettings, type RetentionSettings } from '../../node/retention-settings.js'
import { errorMessage } from '../../errors.js'
import { formatBytes, print, printJson } from '../io.js'
import type { CommandContext } from '../context.js'

/** the offline grace of group.json's settings, if set (the daemon's flags apply only inside the daemon) */
function graceOf (ms: number | undefined): { offlineGraceMs?: number } { return ms === undefined ? {} : { offlineGraceMs: ms } }

export function registerStatus (program: Command, ctx: () => CommandContext): void {
  program.command('status')
    .description('peers (online, roles, space) and, for each snapshot, how many more peers may be lost')
    .action(async () => {
      const c = ctx()
      // the audit and repair code loads only for this command (it brings the network framing with it)
      const [{ Repairer, reliabilityOf, uptimeOf }, { snapshotHealth }, { placedBytes }, { listSnapshots }] = await Promise.all([
        import('../../repair/index.js'), import('../../node/health.js'), import('../../node/ledger-book.js'), import('../../repo/index.js')
      ])
      const { home, net } = await c.openNetwork()
      try {
        // the daemon refreshes on its own schedule and its connections show who is alive
        if (!c.inDaemon) await net.refresh()
        if (net.roster !== null) home.useGroup(net.directory)
        const audit = home.repo.index.audit
        const usedOn = placedBytes(home.repo.index, peer => peer)
        const directPaths = net.direct.paths?.report()
        const balances = net.ledger.balances()
        const peers = (net.roster?.members ?? []).flatMap(m => m.devices.map(d => {
          const offer = net.offerOf(d.peerId)
          const you = d.peerId === net.peerId
          const roles: string[] = []
          if (offer?.persister === true) roles.push('persister')
          if (offer?.publisher === true) roles.push('publisher')
          const rec = audit.getPeer(d.peerId)
          return {
            peerId: d.peerId, name: d.name, userId: m.userId, you,
            online: you || net.isOnline(d.peerId),
            /** how this node reaches the device now: lan, direct, holepunched (WebRTC), relayed (via the relay's peer id), loopback; null when not connected */
            reach: you ? null : net.relay.reachOf(d.peerId) ?? null,
            /** behind NAT: the direct path to this device (direct, trying, waiting after a failure); null when none was needed or tried */
            directPath: (you ? undefined : directPaths?.[d.peerId]) ?? null,
            roles, freeBytes: offer?.freeBytes ?? 0, givenBytes: offer?.quotaBytes ?? 0,
            /** when the roles and space shown were announced in the DHT (the device did not answer now); null when it answered */
            announcedAt: offer?.announcedAt == null ? null : new Date(offer.announcedAt).toISOString(),
            /** bytes of our shares this peer holds */
            usedForUsBytes: usedOn[d.peerId] ?? 0,
            reliability: you ? null : reliabilityOf(rec),
            uptime: rec === undefined ? null : Math.round(uptimeOf(rec) * 1000) / 1000,
            lastSeen: rec === undefined || rec.lastSeenMs === 0 ? null : new Date(rec.lastSeenMs).toISOString(),
            lastChallenge: rec === undefined || rec.lastResult === 'none' ? null : { result: rec.lastResult, at: new Date(rec.lastResultMs).toISOString() },
            challenges: rec === undefined ? { passed: 0, failed: 0, timeouts: 0 } : { passed: rec.passes, failed: rec.fails, timeouts: rec.timeouts }
          }
        }))
        // the person's devices, and per host the last backup of any of them (docs/gc.md: devices see each other)
        const own = net.roster?.members.find(m => m.userId === home.identity.userId)
        const devices = (own?.devices ?? []).map(d => ({ peerId: d.peerId, name: d.name, you: d.peerId === net.peerId, online: d.peerId === net.peerId || net.isOnline(d.peerId) }))
        const byHost = new Map<string, { host: string, snapshots: number, lastBackup: string }>()
        // a write-only machine cannot open snapshot records: it shows no backups (a full machine shows them)
        const readable = home.writeOnly === undefined ? (await listSnapshots(home.repo.packs, home.sodium, home.identity)).snapshots : []
        for (const s of readable) {
          const at = new Date(Number(s.record.time / 1_000_000n)).toISOString()
          const h = byHost.get(s.record.host) ?? { host: s.record.host, snapshots: 0, lastBackup: at }
          h.snapshots++
          if (at > h.lastBackup) h.lastBackup = at
          byHost.set(s.record.host, h)
        }
        const backups = [...byHost.values()].sort((a, b) => a.host < b.host ? -1 : a.host > b.host ? 1 : 0)
        const relayed = net.ledger.relayed()
        const friends = (net.roster?.members ?? []).map(m => ({
          userId: m.userId, name: m.devices[0]?.name ?? '', you: m.userId === home.identity.userId, ...(balances.get(m.userId) ?? { uses: 0, gives: 0 }),
          /** bytes this person's devices relayed for the group's other members in the last 30 days, and for you (their ledger statements) */
          relays: relayed.filter(e => e.relay === m.userId).reduce((n, e) => n + e.bytes, 0),
          relaysForYou: relayed.find(e => e.relay === m.userId && e.member === home.identity.userId)?.bytes ?? 0
        }))
        const online = (peer: string): boolean => net.isOnline(peer)
        const isMember = (peer: string): boolean => net.roster?.members.some(m => m.devices.some(d => d.peerId === peer)) ?? false
        const needsRepair = c.upkeep?.needsRepair() ??
          (home.group === undefined
            ? new Set<string>()
            : new Set(new Repairer(home.group, { online, isMember }, { policy: graceOf(net.state.file.settings?.offlineGraceMs) }).plan().map(n => toHex(n.pack))))
        const snapshots = home.writeOnly === undefined ? await snapshotHealth(home, net, needsRepair) : []
        const upkeep = c.upkeep?.last ?? null
        const lastRound = c.lastRound?.() ?? null
        const whyLocal = snapshots.some(s => s.localPacks > 0) ? (home.group?.whyStaysLocal() ?? net.whyLocal()) : null
        const reachability = net.relay.report()
        // the daemon's schedule and its retention policy, with the policy's last run
        const job = net.state.file.roles.publish
        const lastRet = job?.lastRetention
        let retention: RetentionSettings | { error: string } | null = null
        try {
          if (job?.retention !== undefined) retention = parseRetentionSettings(job.retention)
        } catch (err: unknown) {
          retention = { error: errorMessage(err) }
        }
        const publish = job === null
          ? null
          : {
              paths: job.paths,
              everyMs: job.everyMs,
              lastRun: job.lastRunMs === undefined ? null : new Date(job.lastRunMs).toISOString(),
              watchQuietMs: job.watchQuietMs ?? null,
              retention,
              lastRetention: lastRet === undefined ? null : { at: new Date(lastRet.atMs).toISOString(), forgotten: lastRet.forgotten, packsDeleted: lastRet.packsDeleted, bytesDeleted: lastRet.bytesDeleted, error: lastRet.error }
            }
        const nameOf = (peer: string): string => peers.find(p => p.peerId === peer)?.name ?? peer.slice(0, 16)
        if (c.json) { printJson(c.io, { peerId: net.peerId, group: net.roster === null ? null : { id: net.roster.groupId, name: net.roster.name }, reachability, devices, backups, publish, peers, friends, snapshots, upkeep, lastRound, whyLocal }); return }
        print(c.io, net.roster === null ? 'not in a group: backups stay on this disk (p2pbak group create NAME, or join CODE)' : `group "${net.roster.name}", ${net.roster.members.length} member(s)`)
        print(c.io, `your devices: ${devices.length === 0 ? 'this one' : devices.map(d => `${d.name}${d.you ? ' (this one)' : d.online ? ' (online)' : ' (offline)'}`).join(', ')}`)
        for (const b of backups) print(c.io, `  last backup from ${b.host || '(no host)'}: ${b.lastBackup} (${b.snapshots} snapshot(s))`)
        if (publish !== null) {
          print(c.io, `  scheduled backup of ${publish.paths.join(', ')}, last run ${publish.lastRun ?? 'not yet'}`)
          const r = publish.retention
          const l = publish.lastRetention
          if (r === null) print(c.io, '  retention policy: none (every snapshot is kept)')
          else if ('error' in r) print(c.io, `  retention policy: cannot be read: ${r.error}`)
          else print(c.io, `  retention policy: ${describePolicy(r.policy)}${r.prune ? ' --prune' : ''}; ${l === null ? 'not run yet' : `last run ${l.at}: ${l.error !== null ? `FAILED: ${l.error}` : `forgot ${l.forgotten} snapshot(s), deleted ${l.packsDeleted} pack(s) (${formatBytes(l.bytesDeleted)})`}`}`)
        }
        for (const p of peers) {
          const audit = p.reliability === null ? '' : ` reliability ${p.reliability.toFixed(2)}${p.lastChallenge !== null ? `, last challenge ${p.lastChallenge.result}` : ''}`
          const noDirect = p.reach?.how === 'relayed' && p.directPath?.state === 'waiting' ? ` (no direct path: ${p.directPath.lastError ?? 'failed'}; next try ${p.directPath.nextAttemptAt === undefined ? 'soon' : new Date(p.directPath.nextAttemptAt).toISOString()})` : ''
          const reach = p.reach === null ? '' : `, reached ${p.reach.how === 'relayed' ? `through ${nameOf(p.reach.via ?? '')}'s relay${noDirect}` : p.reach.how === 'lan' ? 'on the LAN' : p.reach.how === 'direct' ? 'directly' : p.reach.how === 'holepunched' ? 'directly (hole-punched, WebRTC)' : 'on this machine'}`
          print(c.io, `  ${p.you ? '*' : ' '} ${p.name.padEnd(16)} ${p.online ? 'online ' : 'offline'} ${(p.roles.join(',') || '-').padEnd(19)} gives ${formatBytes(p.givenBytes)}, holds ${formatBytes(p.usedForUsBytes)} of ours${reach}${audit}`)
        }
        print(c.io, `  this node is ${reachability.reachable ? 'reachable' : 'not reachable from outside'}: ${reachability.how.replace(/12D3\w+/g, (id) => nameOf(id))}`)
        for (const [peer, carried] of Object.entries(reachability.carried)) print(c.io, `  relayed for ${nameOf(peer).padEnd(16)} ${formatBytes(carried.bytes)} in ${carried.connections} connection(s), ${formatBytes(carried.today)} today`)
        for (const f of friends.filter(f => !f.you)) print(c.io, `  balance ${f.name.padEnd(16)} uses ${formatBytes(f.uses)} of the group's disk, gives ${formatBytes(f.gives)}${f.relays > 0 ? `; relayed ${formatBytes(f.relays)} for friends in 30 days (${formatBytes(f.relaysForYou)} for you)` : ''}`)
        for (const s of snapshots) {
          const audited = s.lastFullAudit === null ? 'not fully audited yet' : `fully audited since ${s.lastFullAudit}`
          const localNote = (s.localPacks > 0 && !s.local ? `, ${s.localPacks} of ${s.packs} pack(s) still on this disk only` : '') +
            (s.ownCopies > 0 ? `, ${s.ownCopies} pack(s) also kept on this disk (too few friends for a wider stripe when placed)` : '')
          print(c.io, `  snapshot ${s.id.slice(0, 8)} ${s.time}: ${s.local ? 'local only (on this disk, not on friends)' : `health ${s.health}/${s.target} (${s.verified} verified), can lose ${s.canLose} more peer(s), ${audited}${s.repairing > 0 ? `, ${s.repairing} pack(s) being repaired` : ''}${localNote}`}${s.readable ? '' : ' — NOT READABLE NOW'}`)
        }
        if (whyLocal !== null) print(c.io, `  packs stay on this disk because ${whyLocal}`)
        if (lastRound !== null && lastRound.errors.length > 0) {
          print(c.io, `  the daemon's last round (${lastRound.at}) had ${lastRound.errors.length} problem(s):`)
          for (const e of lastRound.errors) print(c.io, `    ${e}`)
        }
      } finally {
        await home.close()
      }
    })
}
