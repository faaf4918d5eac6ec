/**
 * How a deliverable file reaches the browser: as a signed link to imagegate, or (in
 * `data-uri` mode, for browsers that cannot reach imagegate) inline as a `data:` URI.
 * Inline URIs carry the file's name and signature as media-type parameters
 * (`data:image/png;imagegate=<name>;sig=<mac>;base64,…`), which browsers ignore, so that
 * when Open WebUI sends the chat history back, imagegate can recognise its own images and
 * replace each by its short link before the history goes upstream.
 */
import fs from 'node:fs'
import type { Mode } from './config/options.js'
import type { DataStore } from './files/data-store.js'
import { extensionOf, inlineType } from './files/file-types.js'
import type { FileResolver } from './files/resolver.js'
import type { Signer } from './files/signing.js'
import { createOldestOutMap } from './oldest-out-map.js'
import type { OnReject, Resolve, ResolveFor, Resolved, StoreDataImage } from './rewrite/ports.js'

// One inline image imagegate wrote, as it appears in a JSON request body: `/` may be
// escaped as `\/` by some serializers.
const OWN_INLINE = /data:image\\?\/[a-z0-9.+-]+;imagegate=([A-Za-z0-9%._~!$&'()*+=:@\\/-]+?)(?:;sig=([A-Za-z0-9_-]+))?;base64,[A-Za-z0-9+\\/=]+/g

/**
 * How long a resolved destination is reused, in milliseconds. A model names the same
 * image again and again within one answer (and the Responses API repeats whole texts);
 * resolving and signing each time was a visible share of the benchmark's profile.
 * (A file that changes or goes within this time is caught when its link is served.)
 */
const DEFAULT_RESOLVE_TTL_MS = 5000
/** Destinations remembered at once; the oldest is forgotten first. */
export const MAX_RESOLVED = 1024

export interface DeliveryOptions {
  files: FileResolver
  signer: Signer | undefined
  /** The public base URL, known only once the server listens. */
  publicUrl: () => string
  mode: Mode
  inlineMaxBytes: number
  store: DataStore | undefined
  /** Each reference `resolve` leaves alone (see `resolveFor`). */
  onReject?: OnReject
  /** How long a resolution is reused (0: never); for tests. */
  resolveTtlMs?: number
  /** The clock for `resolveTtlMs`; for tests. */
  now?: () => number
}

/** A destination resolved a moment ago. */
interface Remembered {
  resolved: Resolved
  at: number
}

/** The shell's side of the rewrite ports (see rewrite/ports.ts), and the links they make. */
export interface Delivery {
  /** Resolves a destination the model wrote (for the rewriter). */
  resolve: Resolve
  /** The same, telling `onReject` about each reference left alone (per request). */
  resolveFor: ResolveFor
  /** Stores an inline upstream image (for the rewriter); undefined without a store. */
  storeDataImage: StoreDataImage | undefined
  /** The signed link for an encoded name. */
  link: (name: string) => string
  /** Replaces inline images imagegate wrote by their links (request histories). */
  shortenOwnInline: (body: string) => string
}

export function createDelivery (options: DeliveryOptions): Delivery {
  const { files, signer, store } = options

  function link (name: string): string {
    const query = signer === undefined ? '' : `?sig=${signer.sign(name)}`
    return `${options.publicUrl()}/images/${name}${query}`
  }

  function inline (name: string, realPath: string): string | undefined {
    const type = inlineType(extensionOf(realPath))
    if (type === undefined) return undefined
    let bytes: Buffer
    try {
      if (fs.statSync(realPath).size > options.inlineMaxBytes) return undefined
      bytes = fs.readFileSync(realPath)
    } catch {
      return undefined
    }
    // Checked again after reading: the file may have grown in between.
    if (bytes.length > options.inlineMaxBytes) return undefined
    const sig = signer === undefined ? '' : `;sig=${signer.sign(name)}`
    return `data:${type};imagegate=${name}${sig};base64,${bytes.toString('base64')}`
  }

  const ttl = options.resolveTtlMs ?? DEFAULT_RESOLVE_TTL_MS
  const now = options.now ?? Date.now
  const remembered = createOldestOutMap<string, Remembered>(MAX_RESOLVED)

  /**
   * A link made a moment ago for the same destination, while the public URL is the same.
   * The file is not looked at again here: serving a link checks it anew (inode, size,
   * modification time), and a file gone by then is answered 404. Inline images are not
   * kept: each can be large.
   */
  function recall (key: string): Resolved | undefined {
    const found = remembered.get(key)
    if (found === undefined) return undefined
    if (now() - found.at > ttl || !found.resolved.url.startsWith(options.publicUrl() + '/')) {
      remembered.delete(key)
      return undefined
    }
    return found.resolved
  }

  const resolveFor = (onReject: OnReject | undefined): Resolve => (dest, accept) => {
    const key = `${accept}\u0000${dest}`
    const known = ttl > 0 ? recall(key) : undefined
    if (known !== undefined) return known
    const result = files.resolveReference(dest, accept)
    if (!result.ok) {
      onReject?.({ reason: result.reason, fileName: fileNameOf(dest) })
      return undefined
    }
    const { name, kind, realPath } = result.delivery
    const inlined = options.mode === 'data-uri' && kind === 'image' ? inline(name, realPath) : undefined
    const resolved = { url: inlined ?? link(name), name: displayName(name), kind }
    if (inlined === undefined && ttl > 0) remembered.set(key, { resolved, at: now() })
    return resolved
  }

  const storeDataImage = store === undefined
    ? undefined
    : (mime: string, base64: string): Resolved | undefined => {
        const saved = store.save(mime, base64)
        if (!saved.ok) return undefined
        // The store is a folder like the caches: its files' names start with its id.
        return { url: link(files.nameIn(store.dir, saved.name)), name: saved.name, kind: 'image' }
      }

  function shortenOwnInline (body: string): string {
    if (body.indexOf(';imagegate=') === -1) return body
    return body.replace(OWN_INLINE, (whole: string, escapedName: string, sig: string | undefined) => {
      const name = escapedName.replaceAll('\\/', '/')
      // Only what imagegate signed: a forged marker must not turn into a signed link.
      if (signer !== undefined && !signer.verify(name, sig)) return whole
      if (files.resolveName(name) === undefined) return whole
      return link(name)
    })
  }

  return { resolve: resolveFor(options.onReject), resolveFor, storeDataImage, link, shortenOwnInline }
}

/** Longest file name logged for a reference, in characters. */
const MAX_LOGGED_NAME = 200

/**
 * The last segment of a destination, without query or fragment: enough for an operator
 * to find the file, without the folders it was in or a signature a URL may carry.
 */
export function fileNameOf (dest: string): string {
  const plain = dest.replace(/[?#].*$/s, '')
  return plain.slice(Math.max(plain.lastIndexOf('/'), plain.lastIndexOf('\\')) + 1).slice(0, MAX_LOGGED_NAME)
}

/** The file name shown as alt text. Names come from `encodeName`, so they always decode. */
function displayName (name: string): string {
  return decodeURIComponent(name.slice(name.lastIndexOf('/') + 1))
}
