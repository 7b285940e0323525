/**
 * `p2pbak demo` as a user runs it: five in-process nodes on 127.0.0.1, a backup placed on friends,
 * two holders stopped, a byte-exact restore from the rest, a report, and the temp dir gone after.
 * Until main.ts registers the command, the CLI is assembled here the way main() does it.
 */
import assert from 'node:assert/strict'
import { chmodSync, existsSync, lutimesSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { Command } from 'commander'
import { registerDemo } from '../../src/cli/commands/demo.js'
import { makeContext, type GlobalOptions } from '../../src/cli/context.js'
import { exitCodeFor } from '../../src/cli/main.js'
import { compareTrees, type DemoReport } from '../../src/node/demo.js'
import { TEST_ENV } from '../helpers/cli.js'

async function demoCli (argv: string[]): Promise<{ code: number, stdout: string, stderr: string }> {
  const out: Buffer[] = []
  const err: Buffer[] = []
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  stdout.on('data', (b: Buffer) => out.push(b))
  stderr.on('data', (b: Buffer) => err.push(b))
  const io = { stdout, stderr, stdin: new PassThrough(), env: { ...TEST_ENV } }
  const program = new Command().option('--home <dir>').option('--json').exitOverride()
  let code = 0
  registerDemo(program, () => makeContext(io, program.opts<GlobalOptions>()), c => { code = c })
  try {
    await program.parseAsync(argv, { from: 'user' })
  } catch (e: unknown) {
    code = exitCodeFor(e)
    err.push(Buffer.from(String(e)))
  }
  return { code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }
}

describe('e2e: p2pbak demo', function () {
  this.timeout(60_000)

  it('--json: backs up to friends, survives two stopped holders, restores byte-exact, cleans up', async () => {
    const r = await demoCli(['demo', '--json'])
    assert.equal(r.code, 0, r.stderr + r.stdout)
    const report = JSON.parse(r.stdout) as DemoReport
    assert.equal(report.verified, true, report.story.join('\n'))
    assert.equal(report.error, null)
    assert.deepEqual(report.verify?.differences, [])
    assert.ok((report.verify?.files ?? 0) >= 10)

    const b = report.backup
    assert.ok(b !== null)
    const ann = report.nodes.find(n => n.name === 'ann')
    const friends = report.nodes.filter(n => n.name !== 'ann')
    assert.equal(friends.length, 4)
    // the shares are on other people's nodes (k+m of the 4 friends at least), none on ann's disk
    assert.equal(b.ownShareBytes, 0)
    assert.equal(ann?.shares, 0)
    const holding = friends.filter(n => n.shares > 0)
    assert.ok(holding.length >= b.k + b.m, `scheme ${b.k}+${b.m}, holders ${holding.map(n => n.name).join(',')}`)
    assert.deepEqual(holding.map(n => n.name).sort(), b.holders)
    assert.equal(friends.reduce((a, n) => a + n.shares, 0), b.packs * (b.k + b.m))
    // every friend holds ann's data (at least the replicated snapshot record)
    for (const n of friends) assert.ok(n.heldBytes > 0, `${n.name} holds nothing`)
    // about (k+m)/k of the packed bytes, plus share headers and records
    const held = friends.reduce((a, n) => a + n.shareBytes, 0)
    const expected = b.bytesAdded * (b.k + b.m) / b.k
    assert.ok(held >= expected && held < expected * 1.01, `held ${held}, expected ${expected}`)

    // two holders stopped: exactly what the snapshot could lose, and it stayed readable
    assert.equal(report.stopped.length, 2)
    assert.ok(report.stopped.every(s => holding.some(n => n.name === s)))
    assert.deepEqual(report.nodes.filter(n => n.stopped).map(n => n.name), report.stopped)
    assert.deepEqual(report.healthBefore, { health: b.k + b.m, canLose: b.m, readable: true })
    assert.ok(b.m >= 2, `a group of 4 friends tolerates losing 2 (scheme ${b.k}+${b.m})`)
    assert.deepEqual(report.healthAfter, { health: b.k + b.m - 2, canLose: b.m - 2, readable: true })
    assert.equal(report.restore?.snapshotId, b.snapshotId)
    assert.deepEqual(report.restore?.errors, [])

    assert.equal(existsSync(report.dir), false, 'the temp dir is removed')
    assert.match(report.story.at(-1) ?? '', /^PASS/)
  })

  it('text: a short story ending in PASS; --keep leaves the homes, sample and restore', async () => {
    const r = await demoCli(['demo', '--keep'])
    const lines = r.stdout.trim().split('\n')
    const dir = /in (\S+)$/.exec(lines[0] ?? '')?.[1] ?? ''
    try {
      assert.equal(r.code, 0, r.stderr + r.stdout)
      assert.match(lines[0] ?? '', /^p2pbak demo: 5 nodes on 127\.0\.0\.1 in \//)
      assert.match(r.stdout, /bob, cid, dee and eve contribute 1 GiB each and joined/)
      assert.match(r.stdout, /stopped \w+ and \w+; .*still readable/)
      assert.match(r.stdout, /files verified byte-exact/)
      assert.match(r.stdout, /^PASS in \d+\.\d s$/m)
      assert.match(lines.at(-1) ?? '', new RegExp(`^kept ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} `))
      assert.ok(lines.length <= 10, r.stdout)
      for (const p of ['ann/identity.json', 'eve/group.json', 'sample/photos/beach.raw', 'restore']) assert.ok(existsSync(join(dir, p)), p)
    } finally {
      if (dir.startsWith(tmpdir())) rmSync(dir, { recursive: true, force: true })
    }
  })

  it('the verification catches a changed byte, mode, mtime, link target, missing and extra entry', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'p2pbak-demo-verify-'))
    /** the same small tree each time (fixed mtimes), with one change applied before the times are set */
    const build = (name: string, change: (root: string) => void = () => {}): string => {
      const root = join(dir, name)
      mkdirSync(join(root, 'sub'), { recursive: true })
      writeFileSync(join(root, 'f.bin'), Buffer.from([1, 2, 3]))
      writeFileSync(join(root, 'sub', 'g.txt'), 'g')
      writeFileSync(join(root, 'x.sh'), '#!/bin/sh\n')
      chmodSync(join(root, 'x.sh'), 0o755)
      symlinkSync('f.bin', join(root, 'link'))
      change(root)
      for (const p of ['f.bin', 'sub/g.txt', 'x.sh', 'link', 'sub', '.']) if (existsSync(join(root, p))) lutimesSync(join(root, p), 1_700_000_000.5, 1_700_000_000.5)
      return root
    }
    try {
      const a = build('a')
      assert.deepEqual((await compareTrees(a, build('same'), 1000n)).differences, [])
      const changed = build('changed', root => {
        writeFileSync(join(root, 'f.bin'), Buffer.from([1, 2, 4]))
        chmodSync(join(root, 'x.sh'), 0o644)
        rmSync(join(root, 'link'))
        symlinkSync('sub/g.txt', join(root, 'link'))
        writeFileSync(join(root, 'extra'), '')
        rmSync(join(root, 'sub', 'g.txt'))
      })
      const d = (await compareTrees(a, changed, 1000n)).differences
      for (const re of [/^content: f\.bin/, /^mode: x\.sh/, /^link target: link/, /^missing: sub\/g\.txt/, /^extra: extra/]) assert.ok(d.some(x => re.test(x)), `${String(re)} in ${d.join('; ')}`)
      const touched = build('touched', root => { writeFileSync(join(root, 'sub', 'g.txt'), 'g') })
      utimesSync(join(touched, 'sub', 'g.txt'), 1_700_000_000.501, 1_700_000_000.501)
      assert.deepEqual((await compareTrees(a, touched, 1000n)).differences, ['mtime: sub/g.txt'])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
