/**
 * Builds a tree with the awkward cases of real home folders: odd and non-UTF-8 names, newlines,
 * deep nesting, dangling and absolute symlinks, read-only files and dirs, setuid/setgid/sticky bits,
 * empty files and dirs, a sparse file, hardlink groups, a FIFO, timestamps before 1970 and after 2038
 * with odd nanoseconds.
 */
import { chmodSync, closeSync, linkSync, mkdirSync, openSync, symlinkSync, writeFileSync, writeSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { lutimesNs } from '../../src/backup/fsx.js'

const j = (...parts: Array<string | Buffer>): Buffer => Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [Buffer.from(p)] : [Buffer.from('/'), Buffer.from(p)])))

export function makeAwkwardTree (root: string): void {
  mkdirSync(root, { recursive: true })
  const f = (name: string | Buffer, content: string | Uint8Array, mode?: number): Buffer => {
    const p = j(root, name)
    writeFileSync(p, content)
    if (mode !== undefined) chmodSync(p, mode)
    return p
  }
  f('plain.txt', 'hello world\n')
  f('with space & symbols *?[x].txt', 'odd name')
  f('new\nline', 'a newline in the name')
  f('tab\there', 'tab')
  f('café-ü-日本.txt', 'unicode')
  f(Buffer.from([0x6c, 0x61, 0x74, 0x69, 0x6e, 0xe9, 0xff]), 'not UTF-8')
  f('-rf', 'leading dash')
  f('x'.repeat(255), 'longest name')
  f('empty', '')
  f('random.bin', randomBytes(3 * 1024 * 1024 + 17))
  f('text.log', Array.from({ length: 40000 }, (_, i) => `2026-01-01 line ${i} status=ok\n`).join(''))
  f('readonly.txt', 'read only', 0o444)
  f('setuid-exec', '#!/bin/sh\n', 0o4755)
  f('setgid-exec', '#!/bin/sh\n', 0o2750)
  f('private', 'secret', 0o600)

  mkdirSync(j(root, 'empty-dir'))
  mkdirSync(j(root, 'sticky'), { mode: 0o777 })
  chmodSync(j(root, 'sticky'), 0o1777)
  mkdirSync(j(root, 'setgid-dir'))
  chmodSync(j(root, 'setgid-dir'), 0o2755)
  mkdirSync(j(root, 'ro-dir'))
  f('ro-dir/inside', 'in a read-only dir')

  let deep = j(root, 'deep')
  mkdirSync(deep)
  for (let i = 0; i < 40; i++) { deep = j(deep, `level${i}`); mkdirSync(deep) }
  writeFileSync(j(deep, 'bottom.txt'), 'deep down')

  symlinkSync('plain.txt', j(root, 'link-rel'))
  symlinkSync('/nonexistent/target/file', j(root, 'link-dangling'))
  symlinkSync('deep', j(root, 'link-dir'))
  symlinkSync(Buffer.from([0x2e, 0x2f, 0xfe]), j(root, 'link-binary-target'))

  const h = f('hard-a', 'shared by three names')
  linkSync(h, j(root, 'hard-b'))
  linkSync(h, j(root, 'empty-dir-sibling-hard-c'))

  // sparse: 64 MiB apparent, a little data in the middle and at the end
  const sp = openSync(j(root, 'sparse.img'), 'w')
  writeSync(sp, Buffer.from('middle'), 0, 6, 32 * 1024 * 1024)
  writeSync(sp, Buffer.from('end'), 0, 3, 64 * 1024 * 1024 - 3)
  closeSync(sp)

  execFileSync('mkfifo', [j(root, 'fifo').toString()])

  // timestamps: odd nanoseconds, before 1970, after 2038 (set last, deepest first, dirs after files)
  lutimesNs(j(root, 'plain.txt'), 1_700_000_000_123_456_789n, 1_700_000_000_123_456_789n)
  lutimesNs(j(root, 'text.log'), 4_102_444_800_999_999_999n, 4_102_444_800_999_999_999n)
  lutimesNs(j(root, 'empty'), -86_400_000_000_001n, -86_400_000_000_001n)
  lutimesNs(j(root, 'link-rel'), 1_600_000_000_000_000_001n, 1_600_000_000_000_000_001n)
  lutimesNs(j(root, 'deep'), 2_000_000_000_000_000_007n, 2_000_000_000_000_000_007n)
  chmodSync(j(root, 'ro-dir'), 0o555)
  lutimesNs(j(root, 'empty-dir'), 1_234_567_890_987_654_321n, 1_234_567_890_987_654_321n)
}
