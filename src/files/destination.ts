/**
 * Classifies a destination string exactly as the model wrote it, without touching the
 * filesystem. Only absolute forms can name a file: the model's working directory is
 * the agent's, not ours, so a relative path has no meaning here.
 */

/** What a destination can name, before any filesystem check. */
export type Destination =
  /** An absolute POSIX path, lexically normalized. */
  | { kind: 'path', path: string, basename: string }
  /** A Windows path: on a POSIX host only its last segment can match a cached file. */
  | { kind: 'basename', basename: string }
  | { kind: 'rejected', reason: 'not-a-path' | 'hostile' }

// C0 controls (NUL included), DEL and C1 controls, plus lone surrogates, which no file
// name on disk can hold and which make `encodeURIComponent` throw.
// eslint-disable-next-line no-control-regex -- matching control characters is its purpose
const HOSTILE_CHARACTER = /[\u0000-\u001f\u007f-\u009f]|\p{Cs}/u

// `file:` URL (RFC 8089): `file:/x`, `file:///x` and `file://localhost/x`. Group 1 is the
// authority, group 2 the path up to any query or fragment, which never name a file.
const FILE_URL = /^file:(?:\/\/([^/?#]*))?([^?#]*)/i

// `file://C:/x.png`: a common malformed spelling whose authority is really a drive.
const DRIVE_AUTHORITY = /^[a-z]:$/i

// `C:\…` or `C:/…`. On a POSIX host these come from an agent on Windows and can only
// be matched by basename. The decoded path of `file:///C:/x` starts with a `/`.
const WINDOWS_DRIVE_PATH = /^\/?[a-z]:[\\/]/i

// Either separator: Windows accepts both, so `C:\a/..\b` must split on both.
const WINDOWS_SEPARATOR = /[\\/]/

function rejected (reason: 'not-a-path' | 'hostile'): Destination {
  return { kind: 'rejected', reason }
}

/**
 * The last segment, or `undefined` when the segments contain `..` (a traversal attempt
 * is refused outright rather than normalized into something that might match by
 * basename) or the last one is empty, `.` or a dotfile name.
 */
function checkedBasename (segments: readonly string[]): string | undefined {
  if (segments.includes('..')) return undefined
  const last = segments[segments.length - 1]
  if (last === undefined || last === '' || last.startsWith('.')) return undefined
  return last
}

function classifyWindows (path: string): Destination {
  const basename = checkedBasename(path.split(WINDOWS_SEPARATOR))
  return basename === undefined ? rejected('hostile') : { kind: 'basename', basename }
}

function classifyPosix (path: string): Destination {
  // A backslash is legal in a POSIX file name but is a separator to browsers, to Windows
  // and to @fastify/send; a name holding one could mean two different files.
  if (path.includes('\\')) return rejected('hostile')
  const segments = path.split('/')
  const basename = checkedBasename(segments)
  if (basename === undefined) return rejected('hostile')
  // Only empty and `.` segments remain to fold away: `//a/./b.png` is `/a/b.png`.
  const kept = segments.filter((segment) => segment !== '' && segment !== '.')
  return { kind: 'path', path: '/' + kept.join('/'), basename }
}

function classifyAbsolute (path: string): Destination {
  if (HOSTILE_CHARACTER.test(path)) return rejected('hostile')
  if (WINDOWS_DRIVE_PATH.test(path)) return classifyWindows(path)
  if (path.startsWith('/')) return classifyPosix(path)
  return rejected('not-a-path')
}

function classifyFileUrl (match: RegExpExecArray): Destination {
  const authority = match[1]
  // Group 2 always takes part in a match, if only as ''.
  let encoded = match[2] as string
  if (authority !== undefined && DRIVE_AUTHORITY.test(authority)) {
    encoded = authority + encoded
  } else if (authority !== undefined && authority !== '' && authority.toLowerCase() !== 'localhost') {
    // A remote host (`file://server/share/x.png`) is another machine's disk.
    return rejected('not-a-path')
  }
  let decoded: string
  try {
    decoded = decodeURIComponent(encoded)
  } catch {
    return rejected('hostile')
  }
  return classifyAbsolute(decoded)
}

/**
 * Classifies `dest` (markdown `<>` and MEDIA quotes already stripped). `homedir` is
 * the absolute directory `~/` stands for.
 */
export function parseDestination (dest: string, homedir: string): Destination {
  if (HOSTILE_CHARACTER.test(dest)) return rejected('hostile')
  const fileUrl = FILE_URL.exec(dest)
  if (fileUrl !== null) return classifyFileUrl(fileUrl)
  if (dest.startsWith('~/')) return classifyAbsolute(homedir + dest.slice(1))
  return classifyAbsolute(dest)
}
