/**
 * A home is its owner's alone (design.md §2): another user who may write there could plant a fake
 * daemon socket, swap the key file for one of their own (the next backup would be encrypted to
 * them), or edit the group file a daemon trusts. Every entry point checks it before it trusts
 * anything in the home: init and recover, opening the keys, forwarding a command to a daemon, and
 * the daemon's start.
 */
import { chmod, lstat, stat } from 'node:fs/promises'
import { InvalidConfigError } from '../errors.js'

/** Variables holding a secret: removed from the daemon's environment, never handed to a hook. */
export const SECRET_ENV: readonly string[] = ['P2PBAK_PASSPHRASE']

/** `env` without the SECRET_ENV variables. */
export function withoutSecrets (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env }
  for (const k of SECRET_ENV) Reflect.deleteProperty(out, k)
  return out
}

function uid (): number | undefined {
  return typeof process.getuid === 'function' ? process.getuid() : undefined
}

export interface HomeGuardOptions {
  /**
   * root may use a home another user owns (`sudo p2pbak restore`, to set every file's owner): root
   * is not harmed by the owner's own keys. Not for the daemon, which would run the home's hooks and
   * notify command as root (a system unit runs as the home's owner instead).
   */
  rootMayUseOthers?: boolean
}

/**
 * Refuses a home that another user owns, or that its group or others may write; closes one that
 * only reading is open to (mode 0700, as init makes it). A home that does not exist passes (the
 * caller makes it, or says it is missing).
 */
export async function assertPrivateHome (home: string, opts: HomeGuardOptions = {}): Promise<void> {
  let st
  try {
    st = await stat(home)
  } catch (err: unknown) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  const me = uid()
  const othersHome = me !== undefined && st.uid !== me
  if (othersHome && !(me === 0 && opts.rootMayUseOthers === true)) {
    throw new InvalidConfigError(`${home} belongs to another user (uid ${st.uid}; this is uid ${me}): p2pbak trusts nothing in a home it does not own. Run p2pbak as that user, or use a home of your own (--home)`)
  }
  if ((st.mode & 0o022) !== 0) {
    throw new InvalidConfigError(`${home} is writable by its group or by others (mode ${(st.mode & 0o777).toString(8)}): anyone who can write there could take over this home's keys, its daemon's control socket or its group file. Run \`chmod 700 ${home}\` and try again (on a file system without Unix permissions, FAT or exFAT, mount it with umask=077, or keep the home elsewhere)`)
  }
  if ((st.mode & 0o077) === 0 || othersHome) return
  try {
    await chmod(home, 0o700)
  } catch (err: unknown) {
    // a file system that keeps no modes (FAT, exFAT, some network mounts) refuses chmod: nobody
    // else may write there (checked above), so reading is all that stays open
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err
    // the logger only here: a forwarded command loads nothing it does not need (cli start-up spec)
    const { scopedLogger } = await import('../util/log.js')
    scopedLogger('home')('%s stays readable by others (mode %s): its file system refuses chmod (%s)', home, (st.mode & 0o777).toString(8), code)
  }
}

/**
 * Whether `path` is a socket this user owns (a daemon's control socket; anything else is not talked
 * to); for root on another user's home (`rootMayUseOthers`), one the home's owner owns.
 */
export async function ownSocket (path: string, homeOwner?: number): Promise<boolean> {
  const st = await lstat(path).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  })
  if (st === undefined || !st.isSocket()) return false
  const me = uid()
  return me === undefined || st.uid === me || (me === 0 && st.uid === homeOwner)
}
