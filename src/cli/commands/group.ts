/** `group create|invite|members|remove`, `join CODE`, `contribute SIZE`: the friend group and roles. */
import type { Command } from 'commander'
import { InvalidArgumentError, NotFoundError, AmbiguousIdError } from '../../errors.js'
import { isEmptyPolicy, parseDuration } from '../../repo/retention.js'
import type { PublishJob } from '../../node/group-state.js'
import { describePolicy } from '../../node/retention-settings.js'
import { addKeepOptions, anyKeepFlag, policyFromFlags, type KeepFlags } from '../keep-options.js'
import { formatBytes, print, printErr, printJson } from '../io.js'
import type { CommandContext } from '../context.js'
import type { Roster } from '../../peers/index.js'

export function parseSize (text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(text)
  if (m === null) throw new InvalidArgumentError(`"${text}" is not a size; use e.g. 500M, 20G, 1T or 0`)
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[(m[2] ?? '').toLowerCase()] ?? 1
  return Math.floor(Number(m[1]) * unit)
}

async function withNet<T> (c: CommandContext, fn: (ctx: Awaited<ReturnType<CommandContext['openNetwork']>>) => Promise<T>): Promise<T> {
  const s = await c.openNetwork()
  try {
    return await fn(s)
  } finally {
    await s.home.close()
  }
}

export function registerGroup (program: Command, ctx: () => CommandContext): void {
  const group = program.command('group').description('your friend group: create it, invite friends, list or remove members')

  group.command('create')
    .argument('<name>', 'a name for the group')
    .option('--min-shard-age <days>', 'friends keep every share at least this many days, whoever asks to delete it (default 30)')
    .description('create a friend group with you as its first member')
    .action(async (name: string, opts: { minShardAge?: string }) => {
      const c = ctx()
      const retention = opts.minShardAge !== undefined ? { minShardAgeDays: days(opts.minShardAge) } : undefined
      await withNet(c, async ({ net }) => {
        const r = await net.createGroup(name, retention)
        if (c.json) printJson(c.io, { groupId: r.groupId, name: r.name, peerId: net.peerId })
        else print(c.io, `created group "${r.name}" (${r.groupId.slice(0, 8)}); invite friends with \`p2pbak group invite\``)
      })
    })

  group.command('retention')
    .option('--min-shard-age <days>', 'set the policy (admins): friends keep every share at least this many days')
    .description('show or set how long friends keep shares before any delete is honoured (a lower value takes effect once the old period has passed)')
    .action(async (opts: { minShardAge?: string }) => {
      const c = ctx()
      await withNet(c, async ({ net }) => {
        if (net.roster === null) throw new NotFoundError('this home is in no group')
        if (opts.minShardAge !== undefined) await net.membership.setRetention({ minShardAgeDays: days(opts.minShardAge) })
        const r = net.roster as Roster
        const floor = net.state.file.retentionFloor
        const pending = floor !== undefined && floor.untilMs > Date.now() && floor.minShardAgeDays > r.retention.minShardAgeDays ? floor : undefined
        const effective = net.membership.minShareAgeMs(Date.now()) / 86_400_000
        if (c.json) {
          printJson(c.io, { minShardAgeDays: r.retention.minShardAgeDays, effectiveMinShardAgeDays: effective, previousUntil: pending === undefined ? null : new Date(pending.untilMs).toISOString(), serial: r.serial })
          return
        }
        print(c.io, `friends keep every share at least ${r.retention.minShardAgeDays} day(s) before honouring a delete`)
        if (pending !== undefined) print(c.io, `  until ${new Date(pending.untilMs).toISOString()} this node still keeps them ${pending.minShardAgeDays} day(s) (the policy was lowered)`)
      })
    })

  group.command('invite')
    .description('print a one-time invite code for a friend (valid 7 days unless --ttl); --revoke withdraws one')
    .option('--ttl <duration>', 'how long the code stays valid, e.g. 1d, 12h, 90min', '7d')
    .option('--revoke <code>', 'withdraw an invite not used yet (the code it printed), or every one (all); strangers are shown out when none is left')
    .action(async (opts: { ttl: string, revoke?: string }) => {
      const c = ctx()
      await withNet(c, async ({ net }) => {
        if (opts.revoke !== undefined) {
          const all = opts.revoke.trim().toLowerCase() === 'all'
          const revoked = await net.membership.revokeInvites(all ? undefined : opts.revoke)
          if (c.json) { printJson(c.io, { revoked }); return }
          if (revoked === 0) throw new NotFoundError(all ? 'no invite is open' : 'that invite is not open here (already used, expired or revoked)')
          print(c.io, `revoked ${revoked} invite(s); the code(s) no longer admit anyone`)
          return
        }
        const code = await net.invite(parseDuration(opts.ttl))
        // only an admin's invite brings in a new person (format/group.md §5.3); a member's adds devices of people already in
        const r = net.roster
        const newPerson = r?.members.some(m => m.userId === net.home.identity.userId && m.admin) === true
        if (c.json) { printJson(c.io, { invite: code, newPerson }); return }
        print(c.io, newPerson ? 'give this code to your friend; they run `p2pbak join CODE`:\n' : 'give this code to the new machine; it runs `p2pbak join CODE`:\n')
        print(c.io, code)
        if (!newPerson && r !== null) {
          const admins = r.members.filter(m => m.admin).map(m => m.name).join(', ')
          printErr(c.io, `\nnote: you are not an admin of group "${r.name}": this code adds a device of someone already in the group (a new machine of yours, a write-only server), not a new person; to invite a friend, ask an admin (${admins})`)
        }
        if (!c.inDaemon) printErr(c.io, '\nnote: no daemon runs for this home; start `p2pbak daemon` so your friend can reach you')
      })
    })

  group.command('members')
    .description('list the members of the group, their devices and whether they are online')
    .action(async () => {
      const c = ctx()
      await withNet(c, async ({ net }) => {
        const r = net.roster
        if (r === null) throw new NotFoundError('this home is in no group: `p2pbak group create NAME` or `p2pbak join CODE`')
        const members = r.members.map(m => ({
          userId: m.userId, name: m.name, admin: m.admin, you: m.userId === net.home.identity.userId,
          devices: m.devices.map(d => ({ peerId: d.peerId, name: d.name, online: d.peerId === net.peerId || net.isOnline(d.peerId) }))
        }))
        if (c.json) { printJson(c.io, { groupId: r.groupId, name: r.name, serial: r.serial, members }); return }
        print(c.io, `group "${r.name}" (${r.groupId.slice(0, 8)}), roster #${r.serial}`)
        for (const m of members) {
          print(c.io, `  ${m.userId.slice(0, 8)}  ${m.name}${m.admin ? ' (admin)' : ''}${m.you ? ' (you)' : ''}`)
          for (const d of m.devices) print(c.io, `      device ${d.peerId.slice(-12)} ${d.name} ${d.online ? 'online' : 'offline'}`)
        }
      })
    })

  group.command('remove')
    .argument('<member>', 'user id (or a unique prefix) or name of the member')
    .description('remove a member: their devices can no longer connect or fetch anything')
    .action(async (who: string) => {
      const c = ctx()
      await withNet(c, async (s) => {
        const net = s.net
        const r = net.roster
        if (r === null) throw new NotFoundError('this home is in no group')
        const matches = r.members.filter(m => m.userId.startsWith(who.toLowerCase()) || m.name === who)
        if (matches.length === 0) throw new NotFoundError(`no member matches "${who}"`)
        if (matches.length > 1) throw new AmbiguousIdError(`"${who}" matches ${matches.length} members; give more of the user id`)
        const removed = matches[0] as { userId: string, devices: Array<{ peerId: string }> }
        const next = await net.remove(removed.userId)
        // what the removed member held for us goes to other people's nodes
        s.home.useGroup(net.directory)
        const gone = new Set(removed.devices.map(d => d.peerId))
        const moved = await s.home.group?.replaceShares(peer => gone.has(peer))
        if (c.json) printJson(c.io, { removed: removed.userId, serial: next.serial, sharesReplaced: moved?.shares ?? 0, packsNotRepaired: moved?.failed ?? 0 })
        else print(c.io, `removed ${matches[0]?.name ?? ''} (${removed.userId.slice(0, 8)}) from the group; ${moved?.shares ?? 0} share(s) they held were placed elsewhere${(moved?.failed ?? 0) > 0 ? `, ${moved?.failed ?? 0} pack(s) could not be repaired now` : ''}`)
      })
    })

  group.command('admin')
    .argument('<member>', 'user id (or a unique prefix) or name of the member')
    .option('--revoke', 'take the admin role away instead')
    .description('make a member an admin (admins invite new people, remove members, change retention), or --revoke it; admins only')
    .action(async (who: string, opts: { revoke?: boolean }) => {
      const c = ctx()
      await withNet(c, async ({ net }) => {
        const r = net.roster
        if (r === null) throw new NotFoundError('this home is in no group')
        const matches = r.members.filter(m => m.userId.startsWith(who.toLowerCase()) || m.name === who)
        if (matches.length === 0) throw new NotFoundError(`no member matches "${who}"`)
        if (matches.length > 1) throw new AmbiguousIdError(`"${who}" matches ${matches.length} members; give more of the user id`)
        const m = matches[0] as { userId: string, name: string }
        const admin = opts.revoke !== true
        const next = await net.setAdmin(m.userId, admin)
        if (c.json) printJson(c.io, { userId: m.userId, admin, serial: next.serial })
        else print(c.io, `${m.name} (${m.userId.slice(0, 8)}) is ${admin ? 'now an admin' : 'no longer an admin'} of group "${next.name}"`)
      })
    })

  group.command('remove-device')
    .argument('<peer-id>', 'the device (peer id, or a unique end of it, as `group members` shows) to revoke')
    .description('revoke one device, e.g. a lost machine after `recover`: it can no longer connect, what it held is placed elsewhere')
    .action(async (who: string) => {
      const c = ctx()
      await withNet(c, async (s) => {
        const r = s.net.roster
        if (r === null) throw new NotFoundError('this home is in no group')
        const devices = r.members.flatMap(m => m.devices.map(d => d.peerId)).filter(p => p === who || p.endsWith(who))
        if (devices.length === 0) throw new NotFoundError(`no device matches "${who}"`)
        if (devices.length > 1) throw new AmbiguousIdError(`"${who}" matches ${devices.length} devices; give more of the peer id`)
        const peerId = devices[0] as string
        if (peerId === s.net.peerId) throw new InvalidArgumentError('this is the device you are using; revoke it from another one')
        const next = await s.net.removeDevice(peerId)
        s.home.useGroup(s.net.directory)
        const moved = await s.home.group?.replaceShares(peer => peer === peerId)
        if (c.json) printJson(c.io, { removedDevice: peerId, serial: next.serial, sharesReplaced: moved?.shares ?? 0 })
        else print(c.io, `revoked device ${peerId}; ${moved?.shares ?? 0} share(s) it held were placed elsewhere`)
      })
    })

  program.command('join')
    .argument('<code>', 'the invite code a member gave you')
    .description('join a friend group with an invite code')
    .action(async (code: string) => {
      const c = ctx()
      await withNet(c, async ({ net }) => {
        const r = await net.join(code.trim())
        if (c.json) printJson(c.io, { groupId: r.groupId, name: r.name, members: r.members.length, peerId: net.peerId })
        else print(c.io, `joined group "${r.name}" with ${r.members.length} members`)
      })
    })

  const publish = program.command('publish')
    .argument('[path...]', 'folders this node backs up by itself')
    .option('--every <duration>', 'how often, e.g. 30min, 1h, 1d', '1d')
    .option('--off', 'stop publishing')
    .option('--pre-hook <command>', 'a shell command run before each scheduled backup; if it fails, that backup is skipped')
    .option('--post-hook <command>', 'a shell command run after each scheduled backup, also when it failed')
    .option('--watch', 'continuous mode: also back up changes as they happen, reading only what changed')
    .option('--quiet-period <duration>', 'with --watch: back up after the folders were quiet this long (default 30s)')
    .description('make this node a publisher: the daemon backs these folders up on schedule and, with --keep-…, forgets and prunes old snapshots of them')
  addKeepOptions(publish)
  publish.option('--no-prune', 'with --keep-…: only forget snapshots, do not delete the data they alone used')
    .action(async (paths: string[], opts: KeepFlags & { every: string, off?: boolean, preHook?: string, postHook?: string, watch?: boolean, quietPeriod?: string, prune: boolean }) => {
      const c = ctx()
      const everyMs = parseDuration(opts.every)
      if (opts.off !== true && paths.length === 0) throw new InvalidArgumentError('name the folders to publish, or --off')
      if (opts.off !== true && everyMs < 60_000) throw new InvalidArgumentError(`--every must be at least a minute (1min, 60s), got ${opts.every}`)
      if (opts.quietPeriod !== undefined && opts.watch !== true) throw new InvalidArgumentError('--quiet-period goes with --watch')
      const quietMs = opts.watch === true ? parseDuration(opts.quietPeriod ?? '30s') : undefined
      if (quietMs !== undefined && !(quietMs >= 1000)) throw new InvalidArgumentError(`--quiet-period takes a duration of at least 1s, got "${opts.quietPeriod ?? ''}"`)
      // the policy: the grammar of forget's options, and like forget no policy that keeps nothing
      const policy = anyKeepFlag(opts) ? policyFromFlags(opts) : undefined
      if (policy !== undefined && isEmptyPolicy(policy)) throw new InvalidArgumentError('the retention policy keeps nothing: give at least one --keep-… option with a value other than 0 (to forget every snapshot, name them to `p2pbak forget`)')
      if (policy === undefined && !opts.prune) throw new InvalidArgumentError('--no-prune goes with a retention policy (--keep-daily 7, …)')
      if (opts.off === true && policy !== undefined) throw new InvalidArgumentError('--off stops the schedule and its retention policy; it takes no --keep-… option')
      const { resolve } = await import('node:path')
      await withNet(c, async ({ net, home }) => {
        // a write-only machine cannot forget: its policy would fail after every backup
        if (policy !== undefined) home.requireFullKey('apply a retention policy (forget and prune)')
        const job: PublishJob | null = opts.off === true
          ? null
          : {
              paths: paths.map(p => resolve(p)),
              everyMs,
              ...(opts.preHook !== undefined ? { preHook: opts.preHook } : {}),
              ...(opts.postHook !== undefined ? { postHook: opts.postHook } : {}),
              ...(quietMs !== undefined ? { watchQuietMs: quietMs } : {}),
              ...(policy !== undefined ? { retention: { policy, prune: opts.prune } } : {})
            }
        net.state.file.roles.publish = job
        await net.state.save()
        if (c.json) { printJson(c.io, { publish: job }); return }
        if (job === null) { print(c.io, 'this node no longer backs up on its own'); return }
        print(c.io, `the daemon backs up ${paths.join(' ')} every ${opts.every}${quietMs !== undefined ? `, and what changes ${opts.quietPeriod ?? '30s'} after the folders go quiet` : ''}${c.inDaemon ? '' : ' (start `p2pbak daemon` for it to run)'}`)
        if (job.retention !== undefined) print(c.io, `after each backup that succeeds it applies \`forget ${describePolicy(job.retention.policy)}${job.retention.prune ? ' --prune' : ''}\` to this host's snapshots of these folders`)
        else print(c.io, 'no retention policy: every snapshot is kept (add --keep-daily 7 --keep-weekly 5 --keep-monthly 12, say, to forget old ones)')
      })
    })

  program.command('contribute')
    .argument('<size>', "disk space to offer friends, e.g. 50G; 0 turns the persister role off; 'auto' offers 10% of the free disk")
    .description('set how much disk this node offers to friends')
    .action(async (size: string) => {
      const c = ctx()
      const bytes = size.trim().toLowerCase() === 'auto' ? null : parseSize(size)
      await withNet(c, async ({ net }) => {
        net.state.file.roles.contributeBytes = bytes
        await net.state.save()
        if (c.json) printJson(c.io, { contributeBytes: bytes })
        else print(c.io, bytes === null ? `this node offers 10% of its free disk to friends (now ${formatBytes(net.quotaBytes())})` : bytes === 0 ? 'this node no longer stores data for friends' : `this node offers ${formatBytes(bytes)} to friends`)
      })
    })
}

function days (text: string): number {
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < 0 || n > 3650) throw new InvalidArgumentError(`--min-shard-age takes a whole number of days from 0 to 3650, got "${text}"`)
  return n
}
