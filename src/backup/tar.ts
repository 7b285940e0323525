/**
 * Tar headers, POSIX.1-2001 pax interchange format (ustar headers plus pax extended headers), as read
 * by GNU tar, bsdtar and busybox. Pure: builds 512-byte blocks, no I/O.
 *
 * A pax extended header (typeflag 'x') precedes an entry whose path or link target does not fit the
 * ustar fields (100 bytes), whose mtime has a fraction of a second, is negative or too large, whose size,
 * uid or gid exceed the octal fields, or whose owner names exceed 32 bytes. Names are raw bytes, as the
 * tree stores them, in the ustar fields and in pax records alike; like GNU tar, no `hdrcharset=BINARY`
 * record is written for names that are not UTF-8 (GNU tar 1.34 warns about that keyword, and takes the
 * bytes as they are without it).
 */

export const BLOCK = 512
export type TarType = 'file' | 'hardlink' | 'symlink' | 'chardev' | 'blockdev' | 'dir' | 'fifo'

const TYPEFLAG: Record<TarType, string> = { file: '0', hardlink: '1', symlink: '2', chardev: '3', blockdev: '4', dir: '5', fifo: '6' }

export interface TarEntry {
  /** raw path bytes inside the archive, relative (no leading '/'); a directory's without its trailing '/' */
  path: Uint8Array
  type: TarType
  /** permission bits incl. setuid, setgid, sticky */
  mode: number
  uid: number
  gid: number
  /** bytes of content that follow the header: files only, 0 otherwise */
  size: number
  mtimeNs: bigint
  /** hardlink: the earlier entry's path; symlink: the target */
  linkPath?: Uint8Array
  user?: string
  group?: string
  devMajor?: number
  devMinor?: number
}

const MAX_OCTAL_7 = 0o7777777
const MAX_OCTAL_11 = 0o77777777777
const NS_PER_S = 1_000_000_000n

/** The header blocks of one entry: a pax extended header when needed, then the ustar header. */
export function tarHeader (e: TarEntry): Buffer {
  const path = e.type === 'dir' ? Buffer.concat([Buffer.from(e.path), Buffer.from('/')]) : Buffer.from(e.path)
  const link = e.linkPath === undefined ? Buffer.alloc(0) : Buffer.from(e.linkPath)
  const user = Buffer.from(e.user ?? '')
  const group = Buffer.from(e.group ?? '')
  const pax: Array<[string, Buffer]> = []
  if (path.length > 100) pax.push(['path', path])
  if (link.length > 100) pax.push(['linkpath', link])
  const secs = floorDiv(e.mtimeNs, NS_PER_S)
  const frac = e.mtimeNs - secs * NS_PER_S
  if (frac !== 0n || secs < 0n || secs > BigInt(MAX_OCTAL_11)) pax.push(['mtime', Buffer.from(paxTime(e.mtimeNs))])
  if (e.size > MAX_OCTAL_11) pax.push(['size', Buffer.from(String(e.size))])
  if (e.uid > MAX_OCTAL_7) pax.push(['uid', Buffer.from(String(e.uid))])
  if (e.gid > MAX_OCTAL_7) pax.push(['gid', Buffer.from(String(e.gid))])
  if (user.length > 32) pax.push(['uname', user])
  if (group.length > 32) pax.push(['gname', group])
  const blocks: Buffer[] = []
  if (pax.length > 0) {
    const body = Buffer.concat(pax.map(([k, v]) => paxRecord(k, v)))
    const base = path.subarray(path.lastIndexOf(0x2f, path.length - 2) + 1)
    blocks.push(ustar({
      name: Buffer.concat([Buffer.from('PaxHeaders/'), base]).subarray(0, 100), typeflag: 'x', mode: 0o644, uid: 0, gid: 0,
      size: body.length, mtime: 0, link: Buffer.alloc(0), user: Buffer.alloc(0), group: Buffer.alloc(0), devMajor: 0, devMinor: 0
    }))
    blocks.push(body, Buffer.alloc(padding(body.length)))
  }
  blocks.push(ustar({
    name: path.subarray(0, 100),
    typeflag: TYPEFLAG[e.type],
    mode: e.mode & 0o7777,
    uid: Math.min(e.uid, MAX_OCTAL_7),
    gid: Math.min(e.gid, MAX_OCTAL_7),
    size: e.size > MAX_OCTAL_11 ? 0 : e.size,
    mtime: secs < 0n ? 0 : secs > BigInt(MAX_OCTAL_11) ? MAX_OCTAL_11 : Number(secs),
    link: link.subarray(0, 100),
    user: user.length > 32 ? Buffer.alloc(0) : user,
    group: group.length > 32 ? Buffer.alloc(0) : group,
    devMajor: e.devMajor ?? 0,
    devMinor: e.devMinor ?? 0
  }))
  return Buffer.concat(blocks)
}

/** The end of an archive: two zero blocks. */
export function tarEnd (): Buffer {
  return Buffer.alloc(2 * BLOCK)
}

/** Zero bytes that complete `size` bytes of content to a whole block. */
export function padding (size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK
}

interface UstarFields {
  name: Buffer, typeflag: string, mode: number, uid: number, gid: number, size: number, mtime: number
  link: Buffer, user: Buffer, group: Buffer, devMajor: number, devMinor: number
}

function ustar (f: UstarFields): Buffer {
  const h = Buffer.alloc(BLOCK)
  f.name.copy(h, 0)
  octal(h, 100, 8, f.mode)
  octal(h, 108, 8, f.uid)
  octal(h, 116, 8, f.gid)
  octal(h, 124, 12, f.size)
  octal(h, 136, 12, f.mtime)
  h.write(f.typeflag, 156, 'latin1')
  f.link.copy(h, 157)
  h.write('ustar\u000000', 257, 'latin1')
  f.user.copy(h, 265)
  f.group.copy(h, 297)
  if (f.typeflag === '3' || f.typeflag === '4') {
    octal(h, 329, 8, Math.min(f.devMajor, MAX_OCTAL_7))
    octal(h, 337, 8, Math.min(f.devMinor, MAX_OCTAL_7))
  }
  // the checksum is computed with its own field as spaces, then written as 6 octal digits, NUL, space
  h.fill(0x20, 148, 156)
  let sum = 0
  for (const b of h) sum += b
  h.write(sum.toString(8).padStart(6, '0') + '\u0000 ', 148, 'latin1')
  return h
}

/** An octal number in a field of `width` bytes: width − 1 digits and a NUL. */
function octal (h: Buffer, offset: number, width: number, value: number): void {
  h.write(value.toString(8).padStart(width - 1, '0') + '\u0000', offset, 'latin1')
}

/** `"<len> <key>=<value>\n"`, where len counts the whole record, its own digits included. */
function paxRecord (key: string, value: Buffer): Buffer {
  const rest = Buffer.byteLength(` ${key}=`) + value.length + 1
  let len = rest + 1
  while (String(len).length + rest !== len) len = String(len).length + rest
  return Buffer.concat([Buffer.from(`${len} ${key}=`), value, Buffer.from('\n')])
}

/** Seconds with nine decimals, as pax writes times: -86400.000000001 is 86400 s and 1 ns before 1970. */
function paxTime (ns: bigint): string {
  const neg = ns < 0n
  const abs = neg ? -ns : ns
  return `${neg ? '-' : ''}${abs / NS_PER_S}.${(abs % NS_PER_S).toString().padStart(9, '0')}`
}

function floorDiv (a: bigint, b: bigint): bigint {
  const q = a / b
  return a % b !== 0n && (a < 0n) !== (b < 0n) ? q - 1n : q
}
