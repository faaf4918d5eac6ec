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
import { extensionOf, isDocumentExtension, isImageExtension, isMediaExtension, SVG_EXTENSION } from './file-types.js'
import type { FileKind } from './file-types.js'
import type { Accept } from '../rewrite/ports.js'
import { decodeName, encodeName, folderId } from './names.js'

/** A file that may be served, and the one name it is served under. */
export interface DeliverableFile {
  /** URL-safe `<folder-id>/<path>`, see `encodeName`; `/images/<name>` serves this file. */
  name: string
  /** Real path (symlinks resolved) of the cache dir holding the file. */
  root: string
  /** Real path of the file, always inside `root`. */
  realPath: string
  /** Images are shown, audio and video played, documents downloaded. */
  kind: FileKind
}

/** Why a destination is not deliverable; stable strings, safe to log and count. */
export type Rejection = 'not-a-path' | 'outside-roots' | 'missing' | 'not-a-file' | 'extension' | 'hostile' | 'symlink-escape' | 'unreadable'

type ResolveResult = { ok: true, delivery: DeliverableFile } | { ok: false, reason: Rejection }

export interface FileResolver {
  /** The cache dirs, normalized, in lookup order (the store last); grows on rediscovery. */
  readonly roots: readonly string[]
  /** dest as the model wrote it (markdown `<>` already stripped, MEDIA quotes stripped) */
  resolveReference (dest: string, accept: Accept): ResolveResult
  /** raw name from the URL path after `/images/` (still percent-encoded, may be hostile) */
  resolveName (rawName: string): DeliverableFile | undefined
  /**
   * A name as releases before folder ids wrote it (`sub/a.png`, no id), looked up as they
   * did it: the first folder, in lookup order, holding a deliverable file at that path.
   * The delivery carries the file's one current name; the old name never serves it.
   */
  resolveLegacyName (rawName: string): DeliverableFile | undefined
  /** The public name of a file directly in `dir` (one of the roots), e.g. the store. */
  nameIn (dir: string, fileName: string): string
}

/** Rediscovery waits this long after the last look, however many references miss. */
export const DEFAULT_REDISCOVER_MS = 5000

export interface FileResolverOptions {
  /** Absolute folders whose files may be delivered; earlier ones win a by-name match. */
  cacheDirs: readonly string[]
  /** Absolute folder of stored inline images, looked up after every cache dir. */
  storeDir?: string
  /** Absolute folder `~/` stands for; defaults to `os.homedir()`. */
  homedir?: string
  /** Also deliver `.svg` files as images. */
  allowSvg?: boolean
  /**
   * Lists the cache dirs that exist now (hermes' default discovery). When set, a
   * reference that misses looks again, at most once per `rediscoverMs`, and any new
   * folder is added after the known ones.
   */
  discover?: () => readonly string[]
  rediscoverMs?: number
  /** Told about each folder found by rediscovery. */
  onFolderFound?: (dir: string) => void
  /** Clock in milliseconds, for tests. */
  now?: () => number
}

interface Root {
  /** The configured folder, normalized. */
  readonly dir: string
  /** First segment of the names of its files, see `folderId`. */
  readonly id: string
  /** Its real path, once it exists: looked up once, then kept. */
  real: string | undefined
}

/** How many last segments the folder `dir` has in common with the segments `other` ends with. */
function sharedTail (dir: string, other: readonly string[]): number {
  const own = dir.split('/')
  let shared = 0
  while (shared < own.length && shared < other.length && own[own.length - 1 - shared] === other[other.length - 1 - shared]) shared++
  return shared
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

function assertFolder (option: string, value: unknown): string {
  const resolved = assertAbsolute(option, value)
  // The whole disk as a picture folder is a configuration mistake, not a wish.
  if (resolved === path.parse(resolved).root) throw new TypeError(`${option} must not be the filesystem root, got ${JSON.stringify(value)}`)
  return resolved
}

// Errors that mean the file is there but imagegate's user may not read it.
const DENIED = new Set(['EACCES', 'EPERM'])

/**
 * Creates the resolver for a list of cache dirs. A dir that does not exist yet is kept
 * and looked up again until it does, so the agent may create its cache after imagegate
 * starts.
 */
export function createFileResolver (options: FileResolverOptions): FileResolver {
  if (!Array.isArray(options.cacheDirs)) {
    throw new TypeError('cacheDirs must be an array of absolute paths')
  }
  const dirs = options.cacheDirs.map((dir, i) => assertFolder(`cacheDirs[${i}]`, dir))
  const storeDir = options.storeDir === undefined ? undefined : assertFolder('storeDir', options.storeDir)
  const homedir = assertAbsolute('homedir', options.homedir ?? os.homedir())
  const allowSvg = options.allowSvg === true
  const { discover, onFolderFound } = options
  const rediscoverMs = options.rediscoverMs ?? DEFAULT_REDISCOVER_MS
  const now = options.now ?? Date.now
  const isImage = (extension: string): boolean => isImageExtension(extension) || (allowSvg && extension === SVG_EXTENSION)
  const allowedFor = (extension: string, accept: Accept): boolean =>
    isImage(extension) || (accept === 'media' && (isMediaExtension(extension) || isDocumentExtension(extension)))

  // Cache dirs in lookup order, then the store; `byId` answers `resolveName`.
  const caches: Root[] = []
  let store: Root | undefined
  const byId = new Map<string, Root>()
  let roots: Root[] = []
  let rootDirs: readonly string[] = []

  function newRoot (dir: string): Root | undefined {
    const id = folderId(dir)
    const known = byId.get(id)
    // Listed twice, or found again by rediscovery.
    if (known?.dir === dir) return undefined
    // Two paths with one 40-bit id cannot be produced on purpose, so no test reaches
    // this. Refusing keeps "a name under one id serves that folder only" true even then.
    /* c8 ignore start */
    if (known !== undefined) {
      throw new TypeError(`cache folders ${JSON.stringify(known.dir)} and ${JSON.stringify(dir)} have the same id ${id}; rename one`)
    }
    /* c8 ignore stop */
    const root: Root = { dir, id, real: undefined }
    byId.set(id, root)
    realRoot(root)
    return root
  }

  function publish (): void {
    roots = store === undefined ? [...caches] : [...caches, store]
    rootDirs = Object.freeze(roots.map((root) => root.dir))
  }

  for (const dir of dirs) {
    const root = newRoot(dir)
    if (root !== undefined) caches.push(root)
  }
  if (storeDir !== undefined) store = newRoot(storeDir)
  publish()

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

  // Minus infinity: the first miss after start may look at once.
  let lastLook = -Infinity

  /** Looks for new default folders when allowed to; true when one was added. */
  function rediscover (): boolean {
    if (discover === undefined || now() - lastLook < rediscoverMs) return false
    lastLook = now()
    let added = false
    for (const found of discover()) {
      const root = newRoot(path.resolve(found))
      if (root === undefined) continue
      caches.push(root)
      added = true
      onFolderFound?.(root.dir)
    }
    if (added) publish()
    return added
  }

  /**
   * Checks one file: `segments` is its path below `root` as written (not yet resolved).
   * Any image, media or document extension passes here; the caller narrows by `Accept`.
   */
  function check (root: Root, segments: readonly string[]): ResolveResult {
    // Dotfiles and dot-dirs hold agent state, keys and config, never pictures.
    if (segments.some((segment) => segment.startsWith('.'))) return { ok: false, reason: 'hostile' }
    const base = realRoot(root)
    if (base === undefined) return { ok: false, reason: 'missing' }
    let realPath: string
    try {
      realPath = fs.realpathSync.native(path.join(base, ...segments))
    } catch (err) {
      // A folder on the way that imagegate may not search; else ENOENT, ENOTDIR, ELOOP,
      // ENAMETOOLONG: nothing we could serve.
      return { ok: false, reason: DENIED.has((err as NodeJS.ErrnoException).code as string) ? 'unreadable' : 'missing' }
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
    // A link the browser could not load is worse than the path left as text.
    try {
      fs.accessSync(realPath, fs.constants.R_OK)
    } catch {
      return { ok: false, reason: 'unreadable' }
    }
    const kind: FileKind = isImage(extension) ? 'image' : isMediaExtension(extension) ? 'media' : 'document'
    // Folders may nest (a profile's cache inside a configured folder, the store inside a
    // cache) or be one folder reached by two paths. The file then belongs to the deepest
    // of them, first listed on a tie, and is named there only: one file, one name.
    const owner = ownerOf(realPath, root, base)
    if (owner.root !== root) {
      const below = realPath.slice(owner.real.length + 1)
      return { ok: true, delivery: { name: `${owner.root.id}/${encodeName(below)}`, root: owner.real, realPath, kind } }
    }
    return { ok: true, delivery: { name: `${root.id}/${encodeName(segments.join('/'))}`, root: base, realPath, kind } }
  }

  /** The deepest folder whose real path holds `realPath`; `root` (real path `base`) holds it. */
  function ownerOf (realPath: string, root: Root, base: string): { root: Root, real: string } {
    let owner = { root, real: base }
    for (const other of roots) {
      const real = realRoot(other)
      if (real === undefined || !realPath.startsWith(real + '/')) continue
      if (real.length > owner.real.length || (real === owner.real && roots.indexOf(other) < roots.indexOf(owner.root))) owner = { root: other, real }
    }
    return owner
  }

  /**
   * The first of `ordered` holding a deliverable file at `segments` below it. The reason
   * given when none does is the first one that is not 'missing'.
   */
  function firstHolding (ordered: readonly Root[], segments: readonly string[]): ResolveResult {
    let reason: Rejection = 'missing'
    for (const root of ordered) {
      const result = check(root, segments)
      if (result.ok) return result
      if (reason === 'missing') reason = result.reason
    }
    return { ok: false, reason: reason === 'missing' ? 'outside-roots' : reason }
  }

  /**
   * By name only, for agents whose paths are not ours: among the cache dirs holding a
   * deliverable file of that name directly, the one whose path ends like the folder the
   * agent named (`…/profiles/work/cache/images` for the agent's
   * `/root/.hermes/profiles/work/cache/images/x.png`: hermes' profiles keep the same
   * layout under another home), then the first in lookup order. Without that, a profile's
   * reference would show another profile's file of the same name.
   */
  function byBasename (basename: string, agentDir: readonly string[]): ResolveResult {
    // Array sort is stable: equal tails keep the lookup order.
    const ordered = agentDir.length === 0 ? roots : [...roots].sort((a, b) => sharedTail(b.dir, agentDir) - sharedTail(a.dir, agentDir))
    return firstHolding(ordered, [basename])
  }

  function narrow (result: ResolveResult, accept: Accept): ResolveResult {
    if (result.ok && accept === 'image' && result.delivery.kind !== 'image') return { ok: false, reason: 'extension' }
    return result
  }

  function attempt (dest: string, accept: Accept): ResolveResult {
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
        return narrow(check(root, segments), accept)
      }
    }
    const agentDir = parsed.kind === 'path' ? path.posix.dirname(parsed.path).split('/') : []
    return narrow(byBasename(parsed.basename, agentDir), accept)
  }

  function resolveReference (dest: string, accept: Accept): ResolveResult {
    const result = attempt(dest, accept)
    // A folder the agent created after start holds nothing we know of yet.
    if (!result.ok && (result.reason === 'missing' || result.reason === 'outside-roots') && rediscover()) {
      return attempt(dest, accept)
    }
    return result
  }

  function resolveName (rawName: string): DeliverableFile | undefined {
    const relative = decodeName(rawName)
    if (relative === undefined) return undefined
    const [id = '', ...segments] = relative.split('/')
    const root = byId.get(id)
    if (root === undefined || segments.length === 0) return undefined
    if (!allowedFor(extensionOf(segments[segments.length - 1] as string), 'media')) return undefined
    const result = check(root, segments)
    // Only the file's one name serves it, not a spelling through an enclosing folder.
    return result.ok && result.delivery.name === rawName ? result.delivery : undefined
  }

  function resolveLegacyName (rawName: string): DeliverableFile | undefined {
    const relative = decodeName(rawName)
    if (relative === undefined) return undefined
    const segments = relative.split('/')
    if (!allowedFor(extensionOf(segments[segments.length - 1] as string), 'media')) return undefined
    // The same checks as a current name; only the folder is found by looking, in order.
    const result = firstHolding(roots, segments)
    return result.ok ? result.delivery : undefined
  }

  function nameIn (dir: string, fileName: string): string {
    return `${folderId(path.resolve(dir))}/${encodeName(fileName)}`
  }

  return {
    get roots () { return rootDirs },
    resolveReference,
    resolveName,
    resolveLegacyName,
    nameIn
  }
}
