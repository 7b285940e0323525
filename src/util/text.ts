/**
 * Text that came from elsewhere (a peer's error message, a file name) made safe for a terminal:
 * control characters (C0 but tab and newline, DEL, C1) are shown as `\xNN` escapes, so a peer cannot
 * move the cursor, rewrite lines or change the terminal's title through an error message.
 */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g

export function printable (text: string): string {
  return text.replace(CONTROL, c => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
}

/**
 * A value read from a peer or a file, shown in an error message without running any of its code:
 * `String(v)` calls an object's own `toString`, which a decoded `{"toString":0}` turns into a
 * TypeError instead of the FormatError the parser meant to throw.
 */
export function shown (v: unknown): string {
  switch (typeof v) {
    case 'number': case 'bigint': case 'boolean': case 'undefined': return String(v)
    case 'string': return JSON.stringify(printable(v.length > 40 ? `${v.slice(0, 40)}…` : v))
    default: return v === null ? 'null' : Array.isArray(v) ? 'an array' : `a value of type ${typeof v}`
  }
}
