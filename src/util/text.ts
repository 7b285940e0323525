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
