/**
 * Decides which files imagegate may deliver and under which name. Everything here is
 * synchronous on purpose: the streaming rewriter asks while it holds a chunk of text,
 * and references are rare enough that a few `stat` calls cost less than an async
 * detour through the stream.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseDestination } from './destination.js'
import { extensionOf, isImageExtension, isMediaExtension, SVG_EXTENSION } from './extensions.js'
import { decodeName, encodeName } from './names.js'

/** What the caller can show: `'media'` (a `MEDIA:` tag) accepts images too. */
export type Accept = 'image' | 'media'

/** A file that may be served, and the one name it is served under. */
export interface Delivery {
  /** URL-safe name, see `encodeName`; `/images/<name>` serves this file. */
  name: string
  /** Real path (symlinks resolved) of the cache dir holding the file. */
  root: string
  /** Real path of the file, always inside `root`. */
  realPath: string
  kind: 'image' | 'media'
}

/** Why a destination is not deliverable; stable strings, safe to log and count. */
export type Rejection = 'not-a-path' | 'outside-roots' | 'missing' | 'not-a-file' | 'extension' | 'hostile' | 'symlink-escape'

export type ResolveResult = { ok: true, delivery: Delivery } | { ok: false, reason: Rejection }

export interface FileResolver {
  /** The cache dirs, normalized, in lookup order. */
  readonly roots: readonly string[]
  /** dest as the model wrote it (markdown `<>` already stripped, MEDIA quotes stripped) */
  resolveReference (dest: string, accept: Accept): ResolveResult
  /** raw name from the URL path after `/images/` (still percent-encoded, may be hostile) */
  resolveName (rawName: string): Delivery | undefined
}

export interface FileResolverOptions {
  /** Absolute folders whose files may be delivered; earlier ones win on a name clash. */
  cacheDirs: readonly string[]
  /** Absolute folder `~/` stands for; defaults to `os.homedir()`. */
  homedir?: string
  /** Also deliver `.svg` files as images. */
  allowSvg?: boolean
}

interface Root {
  /** The configured folder, normalized. */
  readonly dir: string
  /** Its real path, once it exists: looked up once, then kept. */
  real: string | undefined
}


/** The path of `target` below `base` as segments, or `undefined` when not inside it. */
function segmentsBelow (base: string, target: string): string[] | undefined {
  const prefix = base + '/'
  return target.startsWith(prefix) ? target.slice(prefix.length).split('/') : undefined
}

function assertAbsolute (option: string, value: unknown): string {
  if (typeof value !== 'string' || !path.isAbsolute(value)) {
    throw new TypeError(`${option} must be an absolute path, got ${JSON.stringify(value)}`)
  }
  return path.resolve(value)
}

/**
 * Creates the resolver for a fixed list of cache dirs. A dir that does not exist yet is
 * kept and looked up again until it does, so the agent may create its cache after
 * imagegate starts.
 */
export function createFileResolver (options: FileResolverOptions): FileResolver {
  if (!Array.isArray(options.cacheDirs)) {
    throw new TypeError('cacheDirs must be an array of absolute paths')
  }
  const dirs = options.cacheDirs.map((dir, i) => {
    const resolved = assertAbsolute(`cacheDirs[${i}]`, dir)
    // The whole disk as a picture folder is a configuration mistake, not a wish.
    if (resolved === path.parse(resolved).root) throw new TypeError(`cacheDirs[${i}] must not be the filesystem root, got ${JSON.stringify(dir)}`)
    return resolved
  })
  const homedir = assertAbsolute('homedir', options.homedir ?? os.homedir())
  const allowSvg = options.allowSvg === true
  const isImage = (extension: string): boolean => isImageExtension(extension) || (allowSvg && extension === SVG_EXTENSION)
  const allowedFor = (extension: string, accept: Accept): boolean =>
    isImage(extension) || (accept === 'media' && isMediaExtension(extension))
  const roots: Root[] = dirs.map((dir) => ({ dir, real: undefined }))
  for (const root of roots) realRoot(root)

  function realRoot (root: Root): string | undefined {
    if (root.real === undefined) {
      try {
        root.real = fs.realpathSync(root.dir)
      } catch {
        return undefined
      }
    }
    return root.real
  }

  /**
   * Checks one file: `segments` is its path below `root` as written (not yet resolved).
   * Any image or media extension passes here; the caller narrows by `Accept`.
   */
  function check (root: Root, segments: readonly string[]): ResolveResult {
    // Dotfiles and dot-dirs hold agent state, keys and config, never pictures.
    if (segments.some((segment) => segment.startsWith('.'))) return { ok: false, reason: 'hostile' }
    const base = realRoot(root)
    if (base === undefined) return { ok: false, reason: 'missing' }
    let realPath: string
    try {
      realPath = fs.realpathSync.native(path.join(base, ...segments))
    } catch {
      // ENOENT, ENOTDIR, ELOOP, ENAMETOOLONG, EACCES: nothing we could serve.
      return { ok: false, reason: 'missing' }
    }
    // Resolve first, stat after: a link pointing outside is refused without ever
    // looking at its target.
    const realSegments = segmentsBelow(base, realPath)
    if (realSegments === undefined) return { ok: false, reason: 'symlink-escape' }
    // A link inside the root must not reach a dotfile or a file type we would not
    // serve by its own name (`x.png -> page.html` would be served as HTML).
    if (realSegments.some((segment) => segment.startsWith('.'))) return { ok: false, reason: 'hostile' }
    const extension = extensionOf(path.basename(realPath))
    if (!allowedFor(extension, 'media')) return { ok: false, reason: 'extension' }
    let stat: fs.Stats
    try {
      stat = fs.statSync(realPath)
    } catch {
      return { ok: false, reason: 'missing' }
    }
    if (!stat.isFile()) return { ok: false, reason: 'not-a-file' }
    const kind = isImage(extension) ? 'image' : 'media'
    return { ok: true, delivery: { name: encodeName(segments.join('/')), root: base, realPath, kind } }
  }

  /**
   * The file a name stands for: the first cache dir holding a deliverable file at that
   * relative path. Both entry points go through here, so a link written today serves
   * the same file tomorrow. The reason given is the first one that is not 'missing'.
   */
  function lookup (segments: readonly string[]): ResolveResult
  function lookup (segments: readonly string[], before: Root): ResolveResult | undefined
  function lookup (segments: readonly string[], before?: Root): ResolveResult | undefined {
    let reason: Rejection = 'missing'
    for (const root of roots) {
      // With `before`, only the dirs ahead of it, and no verdict if none of them has it.
      if (root === before) return undefined
      const result = check(root, segments)
      if (result.ok) return result
      if (reason === 'missing') reason = result.reason
    }
    return { ok: false, reason }
  }

  function narrow (result: ResolveResult, accept: Accept): ResolveResult {
    if (result.ok && accept === 'image' && result.delivery.kind !== 'image') return { ok: false, reason: 'extension' }
    return result
  }

  function resolveReference (dest: string, accept: Accept): ResolveResult {
    const parsed = parseDestination(dest, homedir)
    if (parsed.kind === 'rejected') return { ok: false, reason: parsed.reason }
    // Cheapest refusal first: most paths the model mentions are not pictures at all.
    if (!allowedFor(extensionOf(parsed.basename), accept)) return { ok: false, reason: 'extension' }
    if (parsed.kind === 'path') {
      for (const root of roots) {
        // The model may also write the real path of a symlinked cache dir.
        const real = realRoot(root)
        const segments = segmentsBelow(root.dir, parsed.path) ?? (real === undefined ? undefined : segmentsBelow(real, parsed.path))
        if (segments === undefined) continue
        // Inside a cache dir means this exact file or nothing: a missing file must not
        // be replaced by a namesake found elsewhere.
        const own = check(root, segments)
        if (!own.ok) return own
        // The name must serve this file too: an earlier cache dir holding the same
        // relative path wins, as it does in `resolveName`.
        return narrow(lookup(segments, root) ?? own, accept)
      }
    }
    // The agent's paths are not ours (it runs in a container): match by name, directly
    // in a cache dir only.
    const result = lookup([parsed.basename])
    if (!result.ok && result.reason === 'missing') return { ok: false, reason: 'outside-roots' }
    return narrow(result, accept)
  }

  function resolveName (rawName: string): Delivery | undefined {
    const relative = decodeName(rawName)
    if (relative === undefined) return undefined
    if (!allowedFor(extensionOf(path.posix.basename(relative)), 'media')) return undefined
    const result = lookup(relative.split('/'))
    return result.ok ? result.delivery : undefined
  }

  return { roots: Object.freeze(dirs), resolveReference, resolveName }
}
