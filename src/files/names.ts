/**
 * The public name of a deliverable file: the id of its cache dir, then its path relative
 * to that dir, one percent-encoded segment per folder level, joined by `/`. Every name has exactly one
 * spelling, so `decodeName` can refuse anything that is not what `encodeName` would
 * have produced; that single rule closes most URL tricks (`%2e%2e`, `%2f`, lowercase
 * or needless escapes, double encoding) without a list of special cases.
 */
import { createHash } from 'node:crypto'

/** Hex digits of a folder id: 40 bits, so a handful of folders never share one. */
const FOLDER_ID_LENGTH = 10

/**
 * The first segment of every public name: a short id of the folder the file lives in,
 * derived from the folder's absolute path so that it is the same on every start. Two
 * folders holding `dup.png` give two names, and a name under one id is only ever looked
 * up in that folder.
 */
export function folderId (dir: string): string {
  return createHash('sha256').update(dir, 'utf8').digest('hex').slice(0, FOLDER_ID_LENGTH)
}

/** Longest raw name accepted, in characters: Linux PATH_MAX, so no real file is cut off. */
export const MAX_NAME_LENGTH = 4096

// encodeURIComponent leaves `( ) ' * !` alone. `(` and `)` end or nest a CommonMark
// link destination, `'` closes a quoted title or HTML attribute, and `*` and `!`
// are emphasis and image markers some renderers still act on inside a URL.
const MARKDOWN_UNSAFE = /[!'()*]/g

// C0 controls, DEL and C1 controls: no legitimate file name carries them, and they
// can split log lines or headers.
// eslint-disable-next-line no-control-regex -- matching control characters is its purpose
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/

function encodeSegment (segment: string): string {
  return encodeURIComponent(segment).replace(MARKDOWN_UNSAFE, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())
}

function decodeSegment (segment: string): string | undefined {
  try {
    const plain = decodeURIComponent(segment)
    if (plain === '' || plain === '.' || plain === '..') return undefined
    if (plain.includes('/') || plain.includes('\\') || CONTROL_CHARACTER.test(plain)) return undefined
    // Throws on a lone surrogate, which cannot come from a well-formed URL anyway.
    return encodeSegment(plain) === segment ? plain : undefined
  } catch {
    return undefined
  }
}

/**
 * Encodes a relative POSIX path (`sub/a b.png`) into a URL-safe name
 * (`sub/a%20b.png`). Throws `URIError` on lone surrogates, which the resolver rejects
 * before a name is ever built.
 */
export function encodeName (relativePosix: string): string {
  return relativePosix.split('/').map(encodeSegment).join('/')
}

/**
 * Turns a raw name taken from a URL back into a relative POSIX path, or `undefined`
 * when it is malformed, non-canonical or hostile: empty or over-long, an empty, `.` or
 * `..` segment, an encoded `/` or `\`, a control character, invalid UTF-8, or any
 * spelling `encodeName` would not produce.
 */
export function decodeName (raw: string): string | undefined {
  if (raw.length === 0 || raw.length > MAX_NAME_LENGTH) return undefined
  const segments = raw.split('/')
  const decoded: string[] = []
  for (const segment of segments) {
    const plain = decodeSegment(segment)
    if (plain === undefined) return undefined
    decoded.push(plain)
  }
  return decoded.join('/')
}
