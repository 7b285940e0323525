/**
 * kill -9 at seeded random moments loses nothing (issue 9, item 4), in a small group of real daemons:
 * the publisher's daemon and/or a persister's daemon are killed at random moments of a group backup,
 * restore, repair or prune run through the publisher's daemon, then restarted.
 *
 * After each kill: the store opens, `snapshots` lists every snapshot listed before (for a prune:
 * every snapshot the policy keeps), `check --read-data` passes, the interrupted work resumes and
 * completes, health is back to full, and a restore of the latest backup is byte-exact.
 *
 * The embedded local store's kills, and the count of both flows' kills together, are in
 * crash-kill9.spec.ts; the helpers both use are in crash-kill9.fixtures.ts. P2PBAK_CRASH_GROUP=0
 * leaves this flow out.
 *
 * The seed is printed; rerun a failure with P2PBAK_CRASH_SEED=<seed>. Nothing sleeps blindly: every
 * wait polls a condition with a deadline.
 */
import assert from 'node:assert/strict'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { runCli, type CliResult } from '../helpers/cli.js'
import { startDaemon, stopDaemon, waitFor, type DaemonNode } from '../helpers/daemons.js'
import { stablePort } from '../helpers/ports.js'
import { compareTrees } from '../helpers/tree-compare.js'
import {
  CrashInvariantError, Durations, GROUP_FLOW, assertIntact, baseTree, crashLab, kills, listed, mutate, step, streams
} from './crash-kill9.fixtures.js'

const GROUP = streams(2)

/**
 * Group flow: rounds during which one or two daemons are killed, in turn during a backup, a restore,
 * a repair and a prune (P2PBAK_CRASH_ROUNDS for a longer run).
 */
const GROUP_ROUNDS = Number(process.env.P2PBAK_CRASH_ROUNDS ?? 8)
const OPS = ['backup', 'restore', 'repair', 'prune'] as const
type Op = typeof OPS[number]
/** audits every 1.5 s find a wiped folder at once; a long grace: only failed audits cause repair here */
const DAEMON_FLAGS = ['--audit-interval', '1500', '--offline-grace', '600000']
/** what the group flow's prunes keep (forget --keep-last) */
const KEEP = 3

describe('e2e: kill -9 of daemons at seeded random moments loses nothing', function () {
  this.timeout(300_000)
  const lab = crashLab('group')

  describe('a group of real daemons', function () {
    const nodes: DaemonNode[] = []
    const cli = async (n: DaemonNode, ...argv: string[]): Promise<CliResult> => await runCli(argv, { P2PBAK_HOME: n.home, P2PBAK_PASSPHRASE: 'pw' })

    /** Restarts a daemon after kill -9: its stale socket must not be mistaken for the new one. */
    /**
     * A killed daemon comes back on the port it had, as a user's does (the default port is fixed). A
     * daemon that comes back on another address (a laptop on another network) is the mobility case of
     * the NAT issue: today its friends may keep only its old address.
     */
    const restart = async (n: DaemonNode): Promise<void> => {
      rmSync(join(n.home, 'daemon.sock'), { force: true })
      const before = JSON.parse(readFileSync(join(n.home, 'node.json'), 'utf8')) as { addrs: string[] }
      const port = before.addrs.map(a => /\/tcp\/(\d+)/.exec(a)?.[1]).find(p => p !== undefined)
      await startDaemon(n, DAEMON_FLAGS, port !== undefined ? { listen: `/ip4/127.0.0.1/tcp/${port}` } : {})
    }
    const kill9 = async (n: DaemonNode): Promise<void> => {
      const d = n.daemon
      if (d === undefined || d.exitCode !== null || d.signalCode !== null) return
      const exited = new Promise(resolve => d.once('exit', resolve))
      d.kill('SIGKILL')
      await exited
      n.daemon = undefined
    }
    /** `text` with every node's peer id followed by its name, for failure messages. */
    const named = (text: string): string => {
      let out = text
      for (const n of nodes) {
        const file = join(n.home, 'node.json')
        if (!existsSync(file)) continue
        const { peerId } = JSON.parse(readFileSync(file, 'utf8')) as { peerId: string }
        out = out.split(peerId).join(`${peerId} (${n.name})`)
      }
      return out
    }
    /** Each daemon's state and listen addresses, for failure messages. */
    const daemons = (): string => nodes.map(n => {
      const d = n.daemon
      const state = d === undefined ? 'not running' : d.exitCode !== null || d.signalCode !== null ? `exited (${d.exitCode ?? d.signalCode ?? ''})` : `pid ${d.pid ?? '?'}`
      const file = join(n.home, 'node.json')
      const addrs = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { addrs: string[] }).addrs.join(' ') : 'no node.json'
      return `  ${n.name}: ${state}, ${addrs}`
    }).join('\n')
    const fullyHealthy = async (ann: DaemonNode): Promise<boolean> => {
      const s = await cli(ann, 'status', '--json')
      if (s.code !== 0) return false
      const snaps = s.json<{ snapshots: Array<{ health: number, verified: number, target: number }> }>().snapshots
      return snaps.length > 0 && snaps.every(x => x.target >= 2 && x.verified === x.target && x.health === x.target)
    }
    const persistersOnline = async (ann: DaemonNode, count: number): Promise<boolean> => {
      const s = await cli(ann, 'status', '--json')
      if (s.code !== 0) return false
      const peers = s.json<{ peers: Array<{ you: boolean, online: boolean, roles: string[] }> }>().peers
      return peers.filter(p => !p.you && p.online && p.roles.includes('persister')).length === count
    }

    before(async function () {
      if (!GROUP_FLOW) this.skip() // P2PBAK_CRASH_GROUP=0
      for (const name of ['ann', 'bob', 'cid', 'dee']) {
        const n: DaemonNode = { name, home: join(lab.dir, name), userId: '' }
        const init = await cli(n, 'init', '--json')
        assert.equal(init.code, 0, init.stderr)
        n.userId = init.json<{ userId: string }>().userId
        nodes.push(n)
      }
      // each on a port below the ephemeral range: restart() brings it back there after kill -9
      for (const n of nodes) await startDaemon(n, DAEMON_FLAGS, { listen: `/ip4/127.0.0.1/tcp/${await stablePort()}` })
      const [ann, ...friends] = nodes as [DaemonNode, ...DaemonNode[]]
      assert.equal((await cli(ann, 'group', 'create', 'crashers')).code, 0)
      for (const f of friends) {
        assert.equal((await cli(f, 'contribute', '1G')).code, 0)
        const inv = await cli(ann, 'group', 'invite', '--json')
        assert.equal(inv.code, 0, inv.stderr)
        const j = await cli(f, 'join', inv.json<{ invite: string }>().invite)
        assert.equal(j.code, 0, j.stderr)
      }
      await waitFor('three persisters online at ann', async () => await persistersOnline(ann, friends.length))
      step('group formed')
    })
    after(async () => {
      for (const n of nodes) await stopDaemon(n)
    })

    it(`publisher and persister daemons killed at ${GROUP_ROUNDS} moments of group backups, restores, repairs and prunes`, async function () {
      this.timeout(Math.max(300_000, GROUP_ROUNDS * 60_000)) // a longer run (P2PBAK_CRASH_ROUNDS) gets more time
      const [ann, ...friends] = nodes as [DaemonNode, ...DaemonNode[]]
      const src = join(lab.dir, 'group-src')
      baseTree(GROUP.data, src, 768 * 1024)
      let round = 0
      let restores = 0
      mutate(GROUP.data, src, round++, 512 * 1024)
      const must = new Set<string>()
      // every uncrashed operation is timed: kill moments fall within the median of its kind
      const took = new Map(OPS.map(op => [op, new Durations(GROUP.rng)]))
      const timed = async <T>(op: Op, fn: () => Promise<T>): Promise<T> => {
        const t = performance.now()
        const r = await fn()
        took.get(op)?.add(performance.now() - t)
        return r
      }
      const backup = async (what: string): Promise<void> => {
        const b = await timed('backup', async () => await cli(ann, 'backup', src, '--json'))
        if (b.code !== 0) throw new CrashInvariantError(`${what}: the backup failed (exit ${b.code}): ${named(b.stderr)}\n${daemons()}`)
        must.add(b.json<{ snapshotId: string }>().snapshotId)
      }
      /** `restore latest` is byte-exact (the source tree is what the latest backup saved). */
      const restoreExact = async (what: string): Promise<void> => {
        const target = join(lab.dir, `group-restore-${restores++}`)
        const res = await timed('restore', async () => await cli(ann, 'restore', 'latest', '--target', target))
        if (res.code !== 0) throw new CrashInvariantError(`${what}: restore failed (exit ${res.code}): ${named(res.stderr)}\n${daemons()}`)
        assert.deepEqual(compareTrees(src, join(target, src), { mtimeResolutionNs: 1000n }), [], what)
        rmSync(target, { recursive: true, force: true })
      }
      /** Keeps the newest KEEP snapshots; the ones it forgets leave `must`. */
      const prune = async (what: string): Promise<void> => {
        const r = await timed('prune', async () => await cli(ann, 'forget', '--keep-last', String(KEEP), '--prune', '--json'))
        if (r.code !== 0) throw new CrashInvariantError(`${what}: forget --prune failed (exit ${r.code}): ${named(r.stderr)}\n${daemons()}`)
        await forgetAllBut(KEEP)
      }
      /** What `forget --keep-last n` keeps: the n newest snapshots listed now. The rest may go. */
      const forgetAllBut = async (n: number): Promise<void> => {
        const snaps = (await listed((...a) => cli(ann, ...a), 'before forgetting')).sort((a, b) => b.time.localeCompare(a.time))
        const kept = new Set(snaps.slice(0, n).map(x => x.id))
        for (const id of [...must]) if (!kept.has(id)) must.delete(id)
      }
      /** Wipes one persister's folder of ann's shares (a disk replaced) and, with `measure`, times the heal. */
      const wipe = (n: DaemonNode): void => { rmSync(join(n.home, 'held', ann.userId), { recursive: true, force: true }) }
      const healed = async (what: string, timeoutMs = 90_000): Promise<void> => {
        await waitFor(`${what}: health back to full`, async () => await fullyHealthy(ann), timeoutMs)
          .catch(async (err: unknown) => {
            const s = await cli(ann, 'status', '--json')
            throw new CrashInvariantError(`${what}: ${err instanceof Error ? err.message : String(err)}\n${daemons()}\nann's status: ${s.stdout}${s.stderr}`)
          })
      }

      // the uncrashed runs every kill moment is drawn from
      await backup('the first group backup')
      mutate(GROUP.data, src, round++, 512 * 1024)
      await backup('the second group backup')
      await healed('after the first backups')
      await restoreExact('the first restore')
      const first = GROUP.rng.pick(friends)
      await timed('repair', async () => { wipe(first); await healed(`the first repair (${first.name} wiped)`) })
      await prune('the first prune')

      for (let k = 0; k < GROUP_ROUNDS; k++) {
        const op = OPS[k % OPS.length] as Op
        const at = took.get(op)?.killMoment() ?? 0
        const persister = GROUP.rng.pick(friends)
        const choice = GROUP.rng.next()
        // the publisher does the work of a backup, a restore, a repair and a prune; a persister serves it
        const victims = choice < 0.45 ? [ann] : choice < 0.85 ? [persister] : [ann, persister]
        const wiped = op === 'repair' ? GROUP.rng.pick(friends) : undefined
        const what = `group kill ${k + 1} (${op}${wiped !== undefined ? `, ${wiped.name} wiped` : ''}) of ${victims.map(v => v.name).join('+')} at ${at} ms`
        step(what)
        if (op === 'backup') mutate(GROUP.data, src, round++, 512 * 1024)
        // what a killed prune may already have forgotten: every snapshot but the KEEP newest listed now
        const mayGo = op === 'prune' ? (await listed((...a) => cli(ann, ...a), `${what}: before`)).sort((a, b) => b.time.localeCompare(a.time)).slice(KEEP).map(x => x.id) : []
        let done = false
        const target = join(lab.dir, `group-restore-killed-${k}`)
        const running: Promise<CliResult | null> = (
          op === 'backup' ? cli(ann, 'backup', src, '--json')
            : op === 'restore' ? cli(ann, 'restore', 'latest', '--target', target)
              : op === 'prune' ? cli(ann, 'forget', '--keep-last', String(KEEP), '--prune', '--json')
                : Promise.resolve(wipe(wiped as DaemonNode)).then(() => null) // ann's daemon repairs on its own
        ).finally(() => { done = true })
        await new Promise(resolve => setTimeout(resolve, at)) // the kill moment itself, not a wait for a condition
        if (!done || op === 'repair') kills.groupDuringWork++
        await Promise.all(victims.map(kill9))
        kills.group += victims.length
        const r = await running
        step(`${what}: killed, exit ${r?.code ?? '-'}`)
        // a backup the kill did not reach saved a snapshot that must stay listed; a prune forgot some
        if (op === 'backup' && r?.code === 0) must.add(r.json<{ snapshotId: string }>().snapshotId)
        if (op === 'prune' && r?.code === 0) await forgetAllBut(KEEP)
        // a prune killed after forgetting some of them: those may be gone (the user asked for it), never a kept one
        for (const id of mayGo) must.delete(id)
        rmSync(target, { recursive: true, force: true })
        await Promise.all(victims.map(restart))
        step(`${what}: restarted`)
        await waitFor(`${what}: three persisters online again`, async () => await persistersOnline(ann, friends.length), 60_000)
        step(`${what}: online`)
        // a restarted publisher learns the friends' snapshot records from them: poll, with a deadline
        let missing: string[] = []
        await waitFor(`${what}: every listed snapshot listed again`, async () => {
          const ids = new Set((await listed((...a) => cli(ann, ...a), what)).map(s => s.id))
          missing = [...must].filter(id => !ids.has(id))
          return missing.length === 0
        }, 30_000).catch((err: unknown) => { throw new CrashInvariantError(`${what}: ${err instanceof Error ? err.message : String(err)}; still missing: ${missing.map(id => id.slice(0, 12)).join(', ')}`) })
        for (const s of await assertIntact((...a) => cli(ann, ...a), must, what)) must.add(s.id)
        // the interrupted work resumes and completes
        if (op === 'backup') await backup(`${what}: the next backup`)
        if (op === 'prune') await prune(`${what}: the next prune`)
        await healed(what)
        step(`${what}: healthy`)
        await restoreExact(what)
        step(`${what}: restored`)
      }
      // every persister's store opens: each daemon still answers after all the kills
      for (const n of nodes) assert.equal((await cli(n, 'status', '--json')).code, 0, `${n.name}'s daemon`)
    })
  })
})
